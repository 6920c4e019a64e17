'use strict';
const http = require('node:http');
const { loadConfig } = require('../src/config');
const { startServer } = require('../src/server');

// Polls `check` until it returns a truthy value; fails with what it last saw.
async function waitFor(check, { timeoutMs = 5000, intervalMs = 10, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last saw ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// A tiny upstream that records every request it gets (method, url, headers, body).
async function startUpstream(handler) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const record = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(record);
      if (handler) return handler(req, res, record);
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('X-Upstream', 'yes');
      return res.end(JSON.stringify({ echo: record }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    server,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

// The gateway in this process, on an ephemeral port.
async function startGateway(env = {}) {
  const config = loadConfig({ PORT: '0', BACKEND_URL: 'http://127.0.0.1:9', SUPERVISOR_URL: 'http://127.0.0.1:9', ...env });
  const running = await startServer(config);
  return {
    ...running,
    config,
    url: `http://127.0.0.1:${running.address.port}`,
    close: () => running.close(0),
  };
}

// A raw request (no fetch dispatcher pooling), returns { status, headers, body }.
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const json = (response) => JSON.parse(response.body);

module.exports = { waitFor, startUpstream, startGateway, request, json };
