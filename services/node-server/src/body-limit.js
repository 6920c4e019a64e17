'use strict';
// Request bodies are read whole (up to the limit) before they are proxied, so an oversized
// body answers 413 here instead of reaching a backend half-sent. A declared Content-Length
// over the limit is refused before a byte of the body is read.
const getRawBody = require('raw-body');

function hasBody(req) {
  return req.headers['transfer-encoding'] !== undefined
    || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

function bodyLimit({ limit, stats }) {
  return async function readBody(req, res, next) {
    if (!hasBody(req)) return next();
    try {
      req.rawBody = await getRawBody(req, { length: req.headers['content-length'], limit });
      return next();
    } catch (err) {
      if (err.type === 'entity.too.large') {
        if (stats) stats.counters.body_too_large += 1;
        res.setHeader('Connection', 'close');
        return res.status(413).json({ error: 'payload_too_large', limit, request_id: req.id });
      }
      const status = err.status || err.statusCode || 400;
      return res.status(status).json({ error: 'bad_request_body', detail: err.message, request_id: req.id });
    }
  };
}

// Writes a buffered body into the upstream request (the original stream is already consumed;
// http-proxy then pipes the ended stream, which just ends the upstream request).
function writeBufferedBody(proxyReq, req) {
  if (!Buffer.isBuffer(req.rawBody)) return;
  proxyReq.removeHeader('transfer-encoding');
  proxyReq.setHeader('content-length', req.rawBody.length);
  proxyReq.write(req.rawBody);
}

module.exports = { bodyLimit, writeBufferedBody, hasBody };
