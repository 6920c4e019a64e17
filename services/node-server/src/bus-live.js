'use strict';
// /bus/*: the dashboard's live view of the message bus, and its dead-letter buttons.
//   GET    /bus/events            server-sent events: `fills` (batched), `task`, `depth`
//   POST   /bus/dlq/:seq/requeue  re-queue a dead letter (backend, with TASKS_TOKEN)
//   DELETE /bus/dlq/:seq          drop one
// All need the operator's supervisor key (X-API-Key), checked by asking the supervisor.
const crypto = require('node:crypto');
const express = require('express');

const FLUSH_MS = 250;          // fills go out at most 4 times a second, however fast they come
const FILLS_PER_FLUSH = 50;    // the newest ones; the rest are only counted
const DEPTH_MS = 1000;         // stream depth and consumer lag, while anyone watches
const MAX_CLIENTS = 32;
const MAX_BUFFERED = 1 << 20;  // a client this far behind is dropped, never waited for
const MAX_MESSAGE = 16 << 10;  // a bigger bus message is not forwarded
const KEY_TTL_MS = 30_000;
const SEQ = /^[1-9][0-9]{0,18}$/;

// Checks an X-API-Key by asking the supervisor (it alone knows the key); a good verdict
// is remembered briefly by the key's hash, a bad one never.
function keyChecker(supervisorUrl, now = Date.now) {
  const good = new Map();
  return async function verify(req, res, next) {
    const key = req.headers['x-api-key'];
    const refuse = (status, error) => res.status(status).json({ error, request_id: req.id });
    if (typeof key !== 'string' || key.trim() === '') {
      res.setHeader('WWW-Authenticate', 'X-API-Key');
      return refuse(401, 'api_key_required');
    }
    const id = crypto.createHash('sha256').update(key).digest('hex');
    if ((good.get(id) || 0) > now()) return next();
    try {
      const answer = await fetch(new URL('/api/services', supervisorUrl), {
        headers: { 'X-API-Key': key }, signal: AbortSignal.timeout(3000),
      });
      await answer.arrayBuffer().catch(() => {});
      if (!answer.ok) return refuse(answer.status === 401 ? 401 : 403, 'api_key_refused');
    } catch {
      return refuse(503, 'supervisor_unreachable');
    }
    if (good.size > 100) good.clear();
    good.set(id, now() + KEY_TTL_MS);
    return next();
  };
}

function createHub(bus, log) {
  const clients = new Set();
  let pending = [];
  let dropped = 0;
  let lastDepth = null;
  let flushTimer = null;
  let depthTimer = null;
  let jsm = null;

  function send(event, data) {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of clients) {
      if (res.writableLength > MAX_BUFFERED) {
        clients.delete(res);
        res.destroy();
      } else {
        res.write(frame);
      }
    }
  }

  function flush() {
    flushTimer = null;
    if (pending.length === 0) return;
    send('fills', { fills: pending.slice(-FILLS_PER_FLUSH), count: pending.length + dropped });
    pending = [];
    dropped = 0;
  }

  function parse(msg) {
    if (msg.data.length > MAX_MESSAGE) return null;
    try {
      const value = JSON.parse(Buffer.from(msg.data).toString('utf8'));
      return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
    } catch {
      return null;
    }
  }

  async function depth() {
    const nc = bus.connection;
    if (!nc || nc.isClosed()) return;
    try {
      jsm = jsm || await nc.jetstreamManager();
      const streams = [];
      for await (const si of jsm.streams.list()) {
        const consumers = [];
        for await (const ci of jsm.consumers.list(si.config.name)) {
          consumers.push({
            name: ci.name,
            pending: ci.num_pending,          // not yet delivered: the consumer's lag
            ack_pending: ci.num_ack_pending,  // delivered, not yet acked
            redelivered: ci.num_redelivered,
          });
        }
        streams.push({ name: si.config.name, messages: si.state.messages, bytes: si.state.bytes, consumers });
      }
      lastDepth = { streams, at: new Date().toISOString() };
      send('depth', lastDepth);
    } catch (err) {
      jsm = null;
      log({ level: 'warn', msg: 'bus depth not read', detail: err.message });
    }
  }

  bus.onConnect((nc) => {
    nc.subscribe('fills.>', {
      callback: (err, msg) => {
        const fill = !err && parse(msg);
        if (!fill) return;
        if (clients.size === 0) return;
        pending.push({ ...fill, subject: msg.subject });
        if (pending.length > FILLS_PER_FLUSH) { pending.shift(); dropped += 1; }
        if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
      },
    });
    nc.subscribe('events.tasks.>', {
      callback: (err, msg) => {
        const event = !err && parse(msg);
        if (event && clients.size > 0) send('task', event);
      },
    });
  });

  function attach(req, res) {
    if (clients.size >= MAX_CLIENTS) {
      return res.status(503).json({ error: 'too_many_streams', limit: MAX_CLIENTS, request_id: req.id });
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no',
    });
    res.write(`event: hello\ndata: ${JSON.stringify({ connected: Boolean(bus.connection) })}\n\n`);
    if (lastDepth) res.write(`event: depth\ndata: ${JSON.stringify(lastDepth)}\n\n`);
    clients.add(res);
    if (!depthTimer) {
      depthTimer = setInterval(depth, DEPTH_MS);
      depthTimer.unref();
      depth();
    }
    res.on('close', () => {
      clients.delete(res);
      if (clients.size === 0 && depthTimer) {
        clearInterval(depthTimer);
        depthTimer = null;
      }
    });
    return undefined;
  }

  return { attach };
}

function busRoutes({ bus, config, log = () => {} }) {
  const router = express.Router();
  const hub = createHub(bus, log);
  router.use(keyChecker(config.supervisorUrl));
  router.get('/events', (req, res) => hub.attach(req, res));

  async function toBackend(req, res, method, path) {
    if (!config.tasksToken) {
      return res.status(503).json({ error: 'no_tasks_token', detail: 'the gateway has no TASKS_TOKEN to write with', request_id: req.id });
    }
    try {
      const answer = await fetch(new URL(path, config.backendUrl), {
        method,
        headers: { Authorization: `Bearer ${config.tasksToken}`, 'X-Request-Id': req.id },
        signal: AbortSignal.timeout(5000),
      });
      const text = await answer.text();
      res.status(answer.status);
      if (text) res.type('application/json').send(text);
      else res.end();
    } catch (err) {
      res.status(502).json({ error: 'bad_gateway', upstream: 'backend', detail: err.code || err.message, request_id: req.id });
    }
    return undefined;
  }

  router.post('/dlq/:seq/requeue', (req, res) => {
    if (!SEQ.test(req.params.seq)) return res.status(400).json({ error: 'bad_sequence', request_id: req.id });
    return toBackend(req, res, 'POST', `/api/tasks/dead-letter/${req.params.seq}/requeue`);
  });
  router.delete('/dlq/:seq', (req, res) => {
    if (!SEQ.test(req.params.seq)) return res.status(400).json({ error: 'bad_sequence', request_id: req.id });
    return toBackend(req, res, 'DELETE', `/api/tasks/dead-letter/${req.params.seq}`);
  });
  return router;
}

module.exports = { busRoutes, keyChecker, FLUSH_MS };
