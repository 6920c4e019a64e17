'use strict';
// The gateway on a real nats-server (-js) with real nats.js clients: the trade summary by
// request/reply with its retry and stale fallback, the live view and the dead-letter buttons.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { connect } = require('nats');
const { startUpstream, startGateway, request, json, waitFor } = require('./helpers');

const TIMEOUT_MS = 800;

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startNats() {
  const bin = execFileSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).trim();
  const port = await freePort();
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-nats-'));
  const child = spawn(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  const nc = await waitFor(async () => connect({ servers: url }).catch(() => null), { timeoutMs: 20000, intervalMs: 100, what: 'nats-server' });
  return {
    url,
    nc,
    async stop() {
      await nc.close().catch(() => {});
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      fs.rmSync(store, { recursive: true, force: true });
    },
  };
}

// Reads a server-sent event stream into `events` until closed.
function readEvents(url, headers) {
  const events = [];
  const controller = new AbortController();
  const done = fetch(url, { headers, signal: controller.signal }).then(async (res) => {
    events.status = res.status;
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      const blocks = buf.split('\n\n');
      buf = blocks.pop();
      for (const block of blocks) {
        const type = (block.match(/^event: (.*)$/m) || [])[1];
        const data = (block.match(/^data: (.*)$/m) || [])[1];
        if (type) events.push({ type, data: JSON.parse(data) });
      }
    }
  }).catch(() => {});
  return { events, close: () => { controller.abort(); return done; } };
}

describe('the gateway on the bus', () => {
  let nats;
  let supervisor;
  let backend;

  before(async () => {
    nats = await startNats();
    supervisor = await startUpstream((req, res) => {
      res.writeHead(req.headers['x-api-key'] === 'sekret' ? 200 : 401, { 'Content-Type': 'application/json' });
      res.end('[]');
    });
    backend = await startUpstream((req, res) => {
      res.writeHead(req.method === 'DELETE' ? 204 : 201, { 'Content-Type': 'application/json' });
      res.end(req.method === 'DELETE' ? '' : '{"task":{"id":9}}');
    });
  });

  after(async () => {
    await supervisor.close();
    await backend.close();
    await nats.stop();
  });

  test('the summary comes by request/reply; a silent backend gets the last good answer marked stale', async () => {
    let seen = 0;
    const sub = nats.nc.subscribe('backend.trades.summary', {
      queue: 'backend',
      callback: (err, msg) => { seen += 1; msg.respond(JSON.stringify({ count: 3, realized_pnl: 1.5 })); },
    });
    const gw = await startGateway({ NATS_URL: nats.url, BUS_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });
    try {
      const fresh = await waitFor(async () => {
        const r = await request(`${gw.url}/api/trades/summary`);
        return r.status === 200 && r;
      }, { timeoutMs: 10000, what: 'a fresh answer' });
      assert.equal(fresh.headers['x-served-via'], 'nats');
      assert.deepEqual(json(fresh), { count: 3, realized_pnl: 1.5 });
      assert.equal(fresh.headers['x-stale-age'], undefined);
      assert.ok(seen >= 1);

      sub.unsubscribe(); // the backend stops answering
      await nats.nc.flush();
      const started = Date.now();
      const stale = await request(`${gw.url}/api/trades/summary`);
      const took = Date.now() - started;
      assert.equal(stale.status, 200);
      const body = json(stale);
      assert.equal(body.stale, true);
      assert.equal(body.count, 3);
      assert.equal(typeof body.stale_age_seconds, 'number');
      assert.equal(stale.headers['x-stale-age'], String(body.stale_age_seconds));
      // Two tries and the 100 ms pause, and not much more: within the gateway's own timeout.
      assert.ok(took < 2 * TIMEOUT_MS + 100 + 1500, `took ${took} ms`);
      assert.equal(json(await request(`${gw.url}/gateway/stats`)).bus.stale, 1);
    } finally {
      await gw.close();
    }
  });

  test('level 1: a first request that times out is retried once after about 100 ms', async () => {
    const arrivals = [];
    const sub = nats.nc.subscribe('backend.trades.summary', {
      queue: 'backend',
      callback: (err, msg) => {
        arrivals.push(Date.now());
        if (arrivals.length % 2 === 0) msg.respond(JSON.stringify({ count: arrivals.length }));
      },
    });
    const gw = await startGateway({ NATS_URL: nats.url, BUS_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });
    try {
      await waitFor(() => gw.bus.connection, { timeoutMs: 10000, what: 'the gateway on the bus' });
      const r = await request(`${gw.url}/api/trades/summary`);
      assert.equal(r.status, 200, r.body);
      assert.equal(json(r).stale, undefined);
      assert.equal(arrivals.length, 2);
      assert.ok(arrivals[1] - arrivals[0] >= TIMEOUT_MS + 90, `retry after ${arrivals[1] - arrivals[0]} ms`);
    } finally {
      sub.unsubscribe();
      await gw.close();
    }
  });

  test('nothing cached and nobody answering: a clear 504', async () => {
    const gw = await startGateway({ NATS_URL: nats.url, BUS_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });
    try {
      await waitFor(() => gw.bus.connection, { timeoutMs: 10000, what: 'the gateway on the bus' });
      const r = await request(`${gw.url}/api/trades/summary`);
      assert.equal(r.status, 504);
      assert.equal(json(r).error, 'gateway_timeout');
      assert.match(json(r).detail, /backend\.trades\.summary/);
    } finally {
      await gw.close();
    }
  });

  test('an answer that is an error or garbage is never cached nor served as good', async () => {
    const sub = nats.nc.subscribe('backend.trades.summary', {
      callback: (err, msg) => msg.respond(msg.data.length ? '{"error":"db locked"}' : 'not json'),
    });
    const gw = await startGateway({ NATS_URL: nats.url, BUS_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });
    try {
      await waitFor(() => gw.bus.connection, { timeoutMs: 10000, what: 'the gateway on the bus' });
      assert.equal((await request(`${gw.url}/api/trades/summary`)).status, 504);
    } finally {
      sub.unsubscribe();
      await gw.close();
    }
  });

  test('/bus/events needs a key the supervisor accepts, then streams task events and batched fills', async () => {
    const gw = await startGateway({ NATS_URL: nats.url, SUPERVISOR_URL: supervisor.url });
    try {
      await waitFor(() => gw.bus.connection, { timeoutMs: 10000, what: 'the gateway on the bus' });
      assert.equal((await request(`${gw.url}/bus/events`)).status, 401);
      assert.equal((await request(`${gw.url}/bus/events`, { headers: { 'X-API-Key': 'forged' } })).status, 401);
      const stream = readEvents(`${gw.url}/bus/events`, { 'X-API-Key': 'sekret' });
      await waitFor(() => stream.events.find((e) => e.type === 'hello'), { timeoutMs: 10000, what: 'hello' });
      await waitFor(() => stream.events.find((e) => e.type === 'depth'), { timeoutMs: 10000, what: 'a depth event' });
      nats.nc.publish('events.tasks.dead', JSON.stringify({ id: 7, state: 'dead', error: '"quoted" \n <b>' }));
      nats.nc.publish('events.tasks.dead', 'garbage{');
      for (let i = 0; i < 500; i += 1) nats.nc.publish('fills.SIM', JSON.stringify({ fill_id: `f${i}`, side: 'buy' }));
      const fills = await waitFor(() => {
        const batches = stream.events.filter((e) => e.type === 'fills');
        const total = batches.reduce((n, e) => n + e.data.count, 0);
        return total === 500 && batches;
      }, { timeoutMs: 10000, what: '500 fills in batches' });
      assert.ok(fills.every((e) => e.data.fills.length <= 50));
      assert.equal(fills.at(-1).data.fills.at(-1).fill_id, 'f499');
      const tasks = stream.events.filter((e) => e.type === 'task');
      assert.equal(tasks.length, 1);
      assert.equal(tasks[0].data.error, '"quoted" \n <b>');
      await stream.close();
    } finally {
      await gw.close();
    }
  });

  test('the dead-letter buttons reach the backend with TASKS_TOKEN, only for a good key', async () => {
    const gw = await startGateway({
      NATS_URL: nats.url, SUPERVISOR_URL: supervisor.url, BACKEND_URL: backend.url, TASKS_TOKEN: 'tasks-xyz',
    });
    try {
      const key = { 'X-API-Key': 'sekret' };
      assert.equal((await request(`${gw.url}/bus/dlq/3/requeue`, { method: 'POST' })).status, 401);
      assert.equal((await request(`${gw.url}/bus/dlq/3/requeue`, { method: 'POST', headers: { 'X-API-Key': 'nope' } })).status, 401);
      assert.equal(backend.requests.length, 0);
      const r = await request(`${gw.url}/bus/dlq/3/requeue`, { method: 'POST', headers: key });
      assert.equal(r.status, 201);
      assert.equal((await request(`${gw.url}/bus/dlq/3`, { method: 'DELETE', headers: key })).status, 204);
      assert.equal((await request(`${gw.url}/bus/dlq/..%2f..%2fapi%2ftrades/requeue`, { method: 'POST', headers: key })).status, 400);
      assert.equal((await request(`${gw.url}/bus/dlq/99999999999999999999999/requeue`, { method: 'POST', headers: key })).status, 400);
      assert.deepEqual(backend.requests.map((q) => [q.method, q.url, q.headers.authorization]), [
        ['POST', '/api/tasks/dead-letter/3/requeue', 'Bearer tasks-xyz'],
        ['DELETE', '/api/tasks/dead-letter/3', 'Bearer tasks-xyz'],
      ]);
    } finally {
      await gw.close();
    }
  });
});
