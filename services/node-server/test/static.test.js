'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startGateway, request, json } = require('./helpers');

describe('dashboard files', () => {
  let dist;
  let gw;
  before(async () => {
    dist = fs.mkdtempSync(path.join(os.tmpdir(), 'dist-'));
    fs.mkdirSync(path.join(dist, 'assets'));
    fs.writeFileSync(path.join(dist, 'index.html'), '<!doctype html><div id="root"></div>');
    fs.writeFileSync(path.join(dist, 'assets', 'app-1234.js'), 'console.log(1)');
    gw = await startGateway({ FRONTEND_DIST: dist });
  });
  after(async () => {
    await gw.close();
    fs.rmSync(dist, { recursive: true, force: true });
  });

  test('/ serves index.html', async () => {
    const res = await request(`${gw.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /text\/html/);
    assert.match(res.body, /id="root"/);
  });

  test('fingerprinted assets are served and cached for good', async () => {
    const res = await request(`${gw.url}/assets/app-1234.js`);
    assert.equal(res.status, 200);
    assert.equal(res.body, 'console.log(1)');
    assert.match(res.headers['cache-control'], /immutable/);
  });

  test('a client-side route falls back to index.html', async () => {
    const res = await request(`${gw.url}/services/backend/logs`);
    assert.equal(res.status, 200);
    assert.match(res.body, /id="root"/);
    assert.equal(res.headers['cache-control'], 'no-cache');
  });

  test('a missing file with an extension is a 404, not the app shell', async () => {
    const res = await request(`${gw.url}/assets/missing.js`);
    assert.equal(res.status, 404);
  });

  test('reserved prefixes never fall back to index.html', async () => {
    const res = await request(`${gw.url}/gateway/unknown`);
    assert.equal(res.status, 404);
    assert.equal(json(res).error, 'not_found');
  });

  test('POST to a page path is not answered with the shell', async () => {
    const res = await request(`${gw.url}/somewhere`, { method: 'POST' });
    assert.equal(res.status, 404);
  });
});

describe('dashboard not built', () => {
  let gw;
  before(async () => {
    gw = await startGateway({ FRONTEND_DIST: path.join(os.tmpdir(), 'surely-not-a-dist-dir-xyz') });
  });
  after(() => gw.close());

  test('/ answers 503 with a clear message', async () => {
    const res = await request(`${gw.url}/`);
    assert.equal(res.status, 503);
    assert.match(res.body, /Dashboard not built/);
    assert.match(res.body, /npm run build/);
  });

  test('/health is unaffected', async () => {
    assert.equal((await request(`${gw.url}/health`)).status, 200);
  });
});
