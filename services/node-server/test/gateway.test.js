'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startUpstream, startGateway, request, json, waitFor } = require('./helpers');

describe('gateway', () => {
  let backend;
  let supervisor;
  let gw;
  let sse; // controls of the in-test event stream

  before(async () => {
    backend = await startUpstream((req, res, record) => {
      if (req.url === '/health') return res.end('{"status":"ok"}');
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('X-Request-Id', 'upstream-made-this-up');
      return res.end(JSON.stringify({ echo: record }));
    });
    supervisor = await startUpstream((req, res, record) => {
      if (req.url === '/api/events') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        res.write('event: snapshot\ndata: {"services":[]}\n\n');
        sse = {
          send: (text) => res.write(text),
          closed: false,
        };
        res.on('close', () => { sse.closed = true; });
        return undefined;
      }
      if (req.url.startsWith('/api/services/web/restart')) {
        if (req.headers['x-api-key'] !== 'sekret') {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          return res.end('{"detail":"bad key"}');
        }
        res.writeHead(202, { 'Content-Type': 'application/json' });
        return res.end(JSON.stringify({ name: 'web', state: 'stopping', echo: record }));
      }
      res.setHeader('Content-Type', 'application/json');
      return res.end(JSON.stringify({ echo: record }));
    });
    gw = await startGateway({ BACKEND_URL: backend.url, SUPERVISOR_URL: supervisor.url, BODY_LIMIT: '1kb' });
  });

  after(async () => {
    await gw.close();
    await backend.close();
    await supervisor.close();
  });

  test('GET /health answers ok with uptime and backend up', async () => {
    const res = await request(`${gw.url}/health`);
    assert.equal(res.status, 200);
    const body = json(res);
    assert.equal(body.status, 'ok');
    assert.equal(body.backend, 'up');
    assert.equal(typeof body.uptime_seconds, 'number');
  });

  test('/api/* goes to the backend with path and query kept', async () => {
    const res = await request(`${gw.url}/api/trades?limit=50`);
    assert.equal(res.status, 200);
    assert.equal(json(res).echo.url, '/api/trades?limit=50');
    assert.equal(json(res).echo.method, 'GET');
  });

  test('a POST body reaches the backend intact', async () => {
    const payload = JSON.stringify({ symbol: 'BTC', qty: 2, note: 'é😀' });
    const res = await request(`${gw.url}/api/tasks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
      body: payload,
    });
    assert.equal(res.status, 200);
    const { echo } = json(res);
    assert.equal(echo.body, payload);
    assert.equal(echo.headers['content-length'], String(Buffer.byteLength(payload)));
  });

  test('a chunked POST body is forwarded with a length', async () => {
    const res = await new Promise((resolve, reject) => {
      const req = http.request(`${gw.url}/api/tasks`, { method: 'POST', agent: false, headers: { 'Content-Type': 'text/plain' } }, (r) => {
        let body = '';
        r.on('data', (c) => { body += c; });
        r.on('end', () => resolve({ status: r.statusCode, body }));
      });
      req.on('error', reject);
      req.write('part one,');
      req.end('part two');
    });
    assert.equal(res.status, 200);
    const { echo } = JSON.parse(res.body);
    assert.equal(echo.body, 'part one,part two');
    assert.equal(echo.headers['content-length'], '17');
  });

  test('/supervisor/* has its prefix stripped and X-API-Key passed through', async () => {
    const res = await request(`${gw.url}/supervisor/api/services/web/restart`, {
      method: 'POST',
      headers: { 'X-API-Key': 'sekret' },
    });
    assert.equal(res.status, 202);
    const body = json(res);
    assert.equal(body.echo.url, '/api/services/web/restart');
    assert.equal(body.echo.headers['x-api-key'], 'sekret');

    const denied = await request(`${gw.url}/supervisor/api/services/web/restart`, { method: 'POST', headers: { 'X-API-Key': 'wrong' } });
    assert.equal(denied.status, 401);
  });

  test('X-Request-Id is kept from the request, forwarded upstream and answered', async () => {
    const res = await request(`${gw.url}/supervisor/api/services`, { headers: { 'X-Request-Id': 'abc-123', 'X-API-Key': 'k' } });
    assert.equal(res.headers['x-request-id'], 'abc-123');
    assert.equal(json(res).echo.headers['x-request-id'], 'abc-123');
  });

  test('X-Request-Id is generated when absent, and wins over the upstream one', async () => {
    const res = await request(`${gw.url}/api/status`);
    const id = res.headers['x-request-id'];
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(json(res).echo.headers['x-request-id'], id);
    const local = await request(`${gw.url}/gateway/stats`);
    assert.match(local.headers['x-request-id'], /^[0-9a-f-]{36}$/);
    assert.notEqual(local.headers['x-request-id'], id);
  });

  test('a malformed X-Request-Id is replaced', async () => {
    const res = await request(`${gw.url}/health`, { headers: { 'X-Request-Id': 'has spaces and <tags>' } });
    assert.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  });

  test('server-sent events stream through unbuffered, and a client leaving closes upstream', async () => {
    const received = [];
    let response;
    const req = http.get(`${gw.url}/supervisor/api/events`, { agent: false, headers: { 'X-API-Key': 'k' } }, (res) => {
      response = res;
      res.setEncoding('utf8');
      res.on('data', (chunk) => received.push(chunk));
    });
    req.on('error', () => {});
    try {
      await waitFor(() => received.join('').includes('event: snapshot'), { what: 'the snapshot event' });
      assert.equal(response.headers['content-type'], 'text/event-stream');
      assert.equal(response.headers['x-accel-buffering'], 'no');
      // The upstream keeps the response open; each event must arrive on its own.
      sse.send('event: state\ndata: {"type":"state","service":"web","at":1,"state":"running"}\n\n');
      await waitFor(() => received.join('').includes('"state":"running"'), { what: 'the first state event' });
      sse.send('event: restart\ndata: {"type":"restart","service":"web","at":2,"reason":"crash"}\n\n');
      await waitFor(() => received.join('').includes('"reason":"crash"'), { what: 'the restart event' });
    } finally {
      req.destroy();
    }
    await waitFor(() => sse.closed, { what: 'the upstream stream to close after the client left' });
  });

  test('/supervisor/* without X-API-Key is 401 at the gateway and never forwarded, but /supervisor/health is', async () => {
    const before = supervisor.requests.length;
    for (const path of ['/api/services', '/api/services/web/logs', '/api/events', '/api/diagnostics',
      '/api/suggestions', '/metrics', '/api/services/web/restart', '/', '/anything']) {
      for (const key of [undefined, '', '   ']) {
        const headers = { Host: 'evil.example.com' };
        if (key !== undefined) headers['X-API-Key'] = key;
        const res = await request(`${gw.url}/supervisor${path}`, { headers });
        assert.equal(res.status, 401, `${path} with key ${JSON.stringify(key)}`);
        assert.equal(json(res).error, 'api_key_required');
      }
    }
    assert.equal(supervisor.requests.length, before, 'nothing reached the supervisor');
    const health = await request(`${gw.url}/supervisor/health`, { headers: { Host: 'evil.example.com' } });
    assert.equal(health.status, 200);
    assert.equal(supervisor.requests.length, before + 1);
  });

  test('the client\'s Host reaches the supervisor unchanged (never a loopback name)', async () => {
    const res = await request(`${gw.url}/supervisor/api/services`, { headers: { Host: 'evil.example.com', 'X-API-Key': 'k' } });
    assert.equal(json(res).echo.headers.host, 'evil.example.com');
  });

  test('413 past the body limit, by Content-Length and by chunked length', async () => {
    const big = 'x'.repeat(2048);
    const res = await request(`${gw.url}/api/tasks`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain', 'Content-Length': big.length },
      body: big,
    });
    assert.equal(res.status, 413);
    assert.equal(json(res).error, 'payload_too_large');

    const chunked = await new Promise((resolve, reject) => {
      const req = http.request(`${gw.url}/api/tasks`, { method: 'POST', agent: false, headers: { 'Content-Type': 'text/plain' } }, (r) => {
        let body = '';
        r.on('data', (c) => { body += c; });
        r.on('end', () => resolve({ status: r.statusCode, body }));
      });
      req.on('error', reject);
      req.write('y'.repeat(700));
      req.end('y'.repeat(700));
    });
    assert.equal(chunked.status, 413);
    const before = backend.requests.filter((r) => r.url === '/api/tasks' && r.body.length > 1024);
    assert.equal(before.length, 0, 'an oversized body must never reach the backend');
  });

  test('GET /gateway/stats counts requests by status class', async () => {
    const res = await request(`${gw.url}/gateway/stats`);
    const stats = json(res);
    assert.ok(stats.requests >= 5);
    assert.ok(stats.by_status['2xx'] >= 3);
    assert.ok(stats.by_status['4xx'] >= 2);
    assert.ok(stats.body_too_large >= 2);
    assert.ok(stats.proxied.backend >= 2);
    assert.ok(stats.proxied.supervisor >= 2);
    assert.equal(stats.rate_limited, 0);
  });

  test('unknown gateway paths answer 404 JSON', async () => {
    const res = await request(`${gw.url}/gateway/nope`);
    assert.equal(res.status, 404);
    assert.equal(json(res).error, 'not_found');
  });
});

describe('gateway with upstreams down', () => {
  let gw;
  before(async () => {
    const dead = await startUpstream();
    const deadUrl = dead.url;
    await dead.close(); // nothing listens there any more
    gw = await startGateway({ BACKEND_URL: deadUrl, SUPERVISOR_URL: deadUrl });
  });
  after(() => gw.close());

  test('/health stays 200 and says the backend is down', async () => {
    const res = await request(`${gw.url}/health`);
    assert.equal(res.status, 200);
    assert.equal(json(res).backend, 'down');
  });

  test('a proxied call answers 502 JSON naming the upstream', async () => {
    const res = await request(`${gw.url}/supervisor/api/services`, { headers: { 'X-API-Key': 'k' } });
    assert.equal(res.status, 502);
    assert.equal(json(res).upstream, 'supervisor');
    assert.ok(res.headers['x-request-id']);
    const stats = json(await request(`${gw.url}/gateway/stats`));
    assert.equal(stats.upstream_errors, 1);
  });
});

describe('rate limit', () => {
  let upstream;
  let gw;
  before(async () => {
    upstream = await startUpstream((req, res) => {
      if (req.url === '/api/events') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        return res.end('event: snapshot\ndata: {"services":[]}\n\n');
      }
      res.setHeader('Content-Type', 'application/json');
      return res.end('{}');
    });
    gw = await startGateway({ BACKEND_URL: upstream.url, SUPERVISOR_URL: upstream.url, RATE_LIMIT_PER_MINUTE: '3' });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('answers 429 JSON past the limit, but never for /health or the event stream', async () => {
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await request(`${gw.url}/api/status`)).status, 200);
    }
    const limited = await request(`${gw.url}/api/status`);
    assert.equal(limited.status, 429);
    assert.equal(json(limited).error, 'rate_limited');
    assert.match(limited.headers['content-type'], /application\/json/);
    assert.equal((await request(`${gw.url}/supervisor/api/services`, { headers: { 'X-API-Key': 'k' } })).status, 429);

    for (let i = 0; i < 5; i += 1) {
      assert.equal((await request(`${gw.url}/health`)).status, 200);
      assert.equal((await request(`${gw.url}/supervisor/api/events`, { headers: { 'X-API-Key': 'k' } })).status, 200);
    }
    assert.equal(gw.stats.snapshot().rate_limited, 2);
  });
});
