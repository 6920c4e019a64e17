'use strict';
// The Express application: health, gateway statistics, the two proxies and the dashboard.
const express = require('express');
const { rateLimit } = require('express-rate-limit');
const { createStats } = require('./stats');
const { requestId } = require('./request-id');
const { bodyLimit } = require('./body-limit');
const { createGatewayProxy } = require('./proxy');
const { requireApiKey } = require('./supervisor-auth');
const { dashboard } = require('./static');
const { summaryRoute } = require('./bus-summary');
const { busRoutes } = require('./bus-live');

const SSE_PATH = '/supervisor/api/events';
const BUS_SSE_PATH = '/bus/events';

async function probeBackend(backendUrl, timeoutMs = 1000) {
  try {
    const res = await fetch(new URL('/health', backendUrl), { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer().catch(() => {});
    return res.ok ? 'up' : 'down';
  } catch {
    return 'down';
  }
}

function createApp(config, { bus = null } = {}) {
  const startedAt = Date.now();
  const stats = createStats();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);

  app.use(requestId);
  app.use(stats.middleware);

  // Before the rate limiter: the supervisor's probes must never be refused.
  app.get('/health', async (req, res) => {
    res.json({
      status: 'ok',
      service: config.service,
      uptime_seconds: Math.round((Date.now() - startedAt) / 10) / 100,
      backend: await probeBackend(config.backendUrl),
    });
  });

  app.use(rateLimit({
    windowMs: 60_000,
    limit: config.rateLimitPerMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // The event stream is one long request per dashboard; limiting it would only break it.
    skip: (req) => req.path === SSE_PATH || req.path === BUS_SSE_PATH,
    handler(req, res, next, options) {
      stats.counters.rate_limited += 1;
      res.status(options.statusCode).json({
        error: 'rate_limited',
        limit_per_minute: config.rateLimitPerMinute,
        request_id: req.id,
      });
    },
  }));

  app.use(bodyLimit({ limit: config.bodyLimit, stats }));

  app.get('/gateway/stats', (req, res) => {
    res.json(stats.snapshot());
  });

  if (bus) {
    // Before the proxy: answered over NATS request/reply, with a stale fallback.
    app.get('/api/trades/summary', summaryRoute({ bus, timeoutMs: config.busTimeoutMs, stats }));
    app.use('/bus', busRoutes({ bus, config }));
  }

  app.use(createGatewayProxy({
    name: 'backend',
    target: config.backendUrl,
    stats,
    pathFilter: (pathname) => pathname === '/api' || pathname.startsWith('/api/'),
  }));
  // The client's Host goes through unchanged (no changeOrigin): the supervisor must never
  // take a request from outside for one that named a loopback host.
  app.use('/supervisor', requireApiKey, createGatewayProxy({
    name: 'supervisor', target: config.supervisorUrl, stats, changeOrigin: false,
  }));

  app.use(dashboard({ dist: config.frontendDist }));

  app.use((req, res) => {
    res.status(404).json({ error: 'not_found', path: req.path, request_id: req.id });
  });

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const status = err.status || err.statusCode || 500;
    if (status >= 500) console.error(JSON.stringify({ level: 'error', msg: err.message, request_id: req.id }));
    if (res.headersSent) return res.destroy();
    return res.status(status).json({ error: status >= 500 ? 'internal_error' : 'bad_request', request_id: req.id });
  });

  return { app, stats };
}

module.exports = { createApp, probeBackend, SSE_PATH, BUS_SSE_PATH };
