'use strict';
// The gateway: /api/* to the Python backend (path kept) and /supervisor/* to the
// supervisor's control API (prefix stripped by the mount). Headers pass through, X-API-Key
// included; responses stream, so server-sent events arrive as they are written.
const { createProxyMiddleware } = require('http-proxy-middleware');
const { writeBufferedBody } = require('./body-limit');

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNRESET']);

function createGatewayProxy({ name, target, stats, pathFilter, changeOrigin = true }) {
  return createProxyMiddleware({
    target,
    pathFilter,
    changeOrigin,
    xfwd: true,
    on: {
      proxyReq(proxyReq, req, res) {
        if (stats) stats.counters.proxied[name] += 1;
        writeBufferedBody(proxyReq, req);
        // A client that goes away (a closed dashboard tab on the event stream) must not
        // leave the upstream request open.
        res.once('close', () => {
          if (!res.writableFinished) proxyReq.destroy();
        });
      },
      proxyRes(proxyRes, req) {
        // The gateway's id wins over whatever the upstream echoes, so one id names the exchange.
        proxyRes.headers['x-request-id'] = req.id;
        if (String(proxyRes.headers['content-type'] || '').startsWith('text/event-stream')) {
          proxyRes.headers['cache-control'] = 'no-cache';
          proxyRes.headers['x-accel-buffering'] = 'no'; // tell a reverse proxy in front not to buffer
        }
      },
      error(err, req, res) {
        if (stats) stats.counters.upstream_errors += 1;
        // For a websocket the third argument is a socket; we proxy none, but stay safe.
        if (typeof res.writeHead !== 'function') {
          res.destroy();
          return;
        }
        if (res.headersSent) {
          res.destroy(); // mid-stream: the only honest signal left is to cut the response
          return;
        }
        const status = TIMEOUT_CODES.has(err.code) ? 504 : 502;
        res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({
          error: status === 504 ? 'gateway_timeout' : 'bad_gateway',
          upstream: name,
          detail: err.code || err.message,
          request_id: req.id,
        }));
      },
    },
  });
}

module.exports = { createGatewayProxy };
