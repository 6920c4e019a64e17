'use strict';
// The server as the supervisor runs it: a separate process, configured by its environment.
const { test, describe, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { startUpstream, request, json, waitFor } = require('./helpers');

const ENTRY = path.join(__dirname, '..', 'src', 'index.js');
const children = new Set();

// Spawns the server; resolves with the child and its first "listening" log line.
function spawnServer(env, { stdio = ['ignore', 'pipe', 'pipe'], viaShell = false } = {}) {
  const fullEnv = { PATH: process.env.PATH, BACKEND_URL: 'http://127.0.0.1:9', SUPERVISOR_URL: 'http://127.0.0.1:9', ...env };
  // `sh -c 'LISTEN_PID=$$ exec node ...'` gives the variable the pid node will have, as
  // systemd does between fork and exec.
  const child = viaShell
    ? spawn('/bin/sh', ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', process.execPath, ENTRY], { env: fullEnv, stdio })
    : spawn(process.execPath, [ENTRY], { env: fullEnv, stdio });
  children.add(child);
  child.output = '';
  child.stdout.on('data', (c) => { child.output += c; });
  child.stderr.on('data', (c) => { child.output += c; });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));
  return waitFor(() => {
    const line = child.output.split('\n').find((l) => l.includes('"listening"'));
    if (line) return JSON.parse(line);
    if (child.exitCode !== null) throw new Error(`server exited early: ${child.output}`);
    return null;
  }, { what: 'the server to listen' }).then((listening) => ({ child, listening }));
}

after(() => {
  for (const child of children) child.kill('SIGKILL');
});

describe('as a process', () => {
  test('listens on PORT and exits 0 on SIGTERM promptly', async () => {
    const { child, listening } = await spawnServer({ PORT: '0', HOST: '127.0.0.1' });
    assert.ok(listening.port > 0);
    const res = await request(`http://127.0.0.1:${listening.port}/health`);
    assert.equal(json(res).status, 'ok');
    const t0 = Date.now();
    child.kill('SIGTERM');
    const { code } = await child.exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 2500, 'shutdown took too long');
  });

  test('SIGTERM with an event stream open still exits 0 within the grace', async () => {
    const supervisor = await startUpstream((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('event: snapshot\ndata: {"services":[]}\n\n');
    });
    try {
      const { child, listening } = await spawnServer({ PORT: '0', SUPERVISOR_URL: supervisor.url, SHUTDOWN_GRACE_MS: '200' });
      let got = '';
      const req = http.get(`http://127.0.0.1:${listening.port}/supervisor/api/events`, { agent: false, headers: { 'X-API-Key': 'k' } }, (res) => {
        res.on('data', (c) => { got += c; });
        res.on('error', () => {});
      });
      req.on('error', () => {});
      await waitFor(() => got.includes('snapshot'), { what: 'the stream to open' });
      child.kill('SIGTERM');
      const { code } = await child.exited;
      assert.equal(code, 0);
      req.destroy();
    } finally {
      await supervisor.close();
    }
  });

  test('serves on an inherited socket (fd 3) when LISTEN_FDS/LISTEN_PID name it', async () => {
    const listener = net.createServer();
    await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const { port } = listener.address();
    let child;
    try {
      ({ child } = await spawnServer(
        { LISTEN_FDS: '1', LISTEN_FDNAMES: 'http', HOST: '203.0.113.1' /* unbindable: used only without fd 3 */ },
        { stdio: ['ignore', 'pipe', 'pipe', listener._handle], viaShell: true },
      ));
    } finally {
      // The child holds its own copy; ours must stop accepting so the child gets every connection.
      await new Promise((resolve) => listener.close(resolve));
    }
    assert.match(child.output, /"fd":3/);
    const res = await request(`http://127.0.0.1:${port}/health`);
    assert.equal(res.status, 200);
    assert.equal(json(res).status, 'ok');
    child.kill('SIGTERM');
    assert.equal((await child.exited).code, 0);
  });

  test('LISTEN_FDS meant for another pid is ignored', async () => {
    const { child, listening } = await spawnServer({ LISTEN_FDS: '1', LISTEN_PID: '1', PORT: '0' });
    assert.equal(listening.fd, undefined);
    assert.ok(listening.port > 0);
    child.kill('SIGTERM');
    await child.exited;
  });

  test('POSTs heartbeats with X-Unified-Token every WATCHDOG_USEC/2', async () => {
    const beats = [];
    const receiver = await startUpstream((req, res, record) => {
      beats.push({ at: Date.now(), token: record.headers['x-unified-token'], method: record.method, url: record.url });
      res.writeHead(204);
      res.end();
    });
    try {
      const { child } = await spawnServer({
        PORT: '0',
        UNIFIED_HEARTBEAT_URL: `${receiver.url}/api/services/web/heartbeat`,
        UNIFIED_TOKEN: 'tok-1',
        WATCHDOG_USEC: '200000', // every 100 ms
      });
      await waitFor(() => beats.length >= 3, { what: 'three heartbeats', timeoutMs: 5000 });
      for (const beat of beats) {
        assert.equal(beat.method, 'POST');
        assert.equal(beat.token, 'tok-1');
        assert.equal(beat.url, '/api/services/web/heartbeat');
      }
      child.kill('SIGTERM');
      assert.equal((await child.exited).code, 0);
    } finally {
      await receiver.close();
    }
  });
});
