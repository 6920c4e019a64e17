'use strict';
const { test, describe, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const checkpoint = require('../src/checkpoint');
const { canonicalJson, compareCodePoints, pythonFloatRepr } = require('../src/canonical-json');
const { FIXTURE_DATA, FIXTURE_PATH, makeFixture } = require('./fixtures/make-checkpoint-fixture');

const { createCheckpoint, sha256Hex } = checkpoint;
const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;
// The repository's Python helper (unified_system.child.checkpoint), when it can be imported.
const REPO_SRC = path.resolve(__dirname, '..', '..', '..', 'src');
const pythonEnv = { ...process.env, PYTHONPATH: REPO_SRC };
const hasPythonHelper = hasPython
  && spawnSync('python3', ['-c', 'import unified_system.child.checkpoint'], { env: pythonEnv }).status === 0;

describe('canonical JSON', () => {
  test('sorted keys, no spaces', () => {
    assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 0, y: false } }), '{"a":[true,null,"x"],"b":1,"c":{"y":false,"z":0}}');
  });

  test('keys sort by code point, not UTF-16 unit', () => {
    assert.ok(compareCodePoints('😀', '！') > 0);
    assert.ok(compareCodePoints('！', '😀') < 0);
    assert.equal(canonicalJson({ '😀': 1, '！': 2, a: 3 }), '{"a":3,"！":2,"😀":1}');
  });

  test('numbers are written like Python writes them', () => {
    const table = [[0.1, '0.1'], [1e-5, '1e-05'], [1e-4, '0.0001'], [1.5e-7, '1.5e-07'], [2.5e-100, '2.5e-100'],
      [123456789.125, '123456789.125'], [1e15 + 0.5, '1000000000000000.5'], [-0.5, '-0.5'], [5e-324, '5e-324']];
    for (const [value, expected] of table) assert.equal(pythonFloatRepr(value), expected, String(value));
    assert.equal(canonicalJson([1, -42, 1e22]), '[1,-42,10000000000000000000000]');
  });

  test('non-finite numbers and cycles are refused', () => {
    assert.throws(() => canonicalJson({ a: NaN }), TypeError);
    assert.throws(() => canonicalJson([Infinity]), TypeError);
    const cyclic = {};
    cyclic.self = cyclic;
    assert.throws(() => canonicalJson(cyclic), TypeError);
  });

  test('matches Python json.dumps(sort_keys, compact, ensure_ascii=False) byte for byte', { skip: !hasPython && 'python3 not found' }, () => {
    const script = 'import json,sys\n'
      + 'd=json.loads(sys.stdin.read())\n'
      + 'sys.stdout.buffer.write(json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))';
    const out = spawnSync('python3', ['-c', script], { input: JSON.stringify(FIXTURE_DATA) });
    assert.equal(out.status, 0, String(out.stderr));
    assert.equal(canonicalJson(FIXTURE_DATA), out.stdout.toString('utf8'));
  });
});

describe('checkpoint helper', () => {
  let dir;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('load on an empty or missing directory is null', () => {
    assert.equal(createCheckpoint({ dir }).load(), null);
    assert.equal(createCheckpoint({ dir: path.join(dir, 'absent') }).load(), null);
    assert.deepEqual(createCheckpoint({ dir: path.join(dir, 'absent') }).generations(), []);
  });

  test('save writes the documented file, load returns the data', () => {
    const cp = createCheckpoint({ dir });
    const generation = cp.save({ b: 2, a: 1 }, { now: new Date('2026-01-02T03:04:05.678Z') });
    assert.equal(generation, 1);
    assert.equal(path.basename(cp.pathFor(generation)), 'checkpoint-000000000001.json');
    assert.equal(fs.statSync(cp.pathFor(generation)).mode & 0o777, 0o600);
    const text = fs.readFileSync(cp.pathFor(generation), 'utf8');
    assert.equal(text, `{"data":{"a":1,"b":2},"format":1,"generation":1,"saved_at":"2026-01-02T03:04:05.678Z","sha256":"${sha256Hex('{"a":1,"b":2}')}"}\n`);
    assert.deepEqual(cp.load(), { a: 1, b: 2 });
    assert.deepEqual(fs.readdirSync(dir), ['checkpoint-000000000001.json'], 'no temp file is left behind');
  });

  test('generations count up and only `keep` are kept', () => {
    const cp = createCheckpoint({ dir, keep: 3 });
    for (let i = 1; i <= 5; i += 1) assert.equal(cp.save({ i }), i);
    assert.deepEqual(cp.generations(), [3, 4, 5]);
    assert.deepEqual(cp.load(), { i: 5 });
    assert.equal(cp.loadRecord().generation, 5);
  });

  test('a corrupt latest generation falls back to the newest valid one', () => {
    const cp = createCheckpoint({ dir, keep: 5 });
    cp.save({ v: 1 });
    cp.save({ v: 2 });
    const third = cp.save({ v: 3 });
    fs.writeFileSync(cp.pathFor(third), '{"data":{"v":3},"format":1,"gen'); // torn write
    assert.deepEqual(cp.load(), { v: 2 });

    // A parseable file whose hash does not match its data is just as invalid.
    const second = path.join(dir, 'checkpoint-000000000002.json');
    const record = JSON.parse(fs.readFileSync(second, 'utf8'));
    record.data.v = 99;
    fs.writeFileSync(second, JSON.stringify(record));
    assert.deepEqual(cp.load(), { v: 1 });

    // The next save goes past every generation on disk, valid or not.
    assert.equal(cp.save({ v: 4 }), 4);
    assert.deepEqual(cp.load(), { v: 4 });
  });

  test('a wrong format number is not loaded', () => {
    const cp = createCheckpoint({ dir });
    const p = cp.pathFor(cp.save({ v: 1 }));
    const record = JSON.parse(fs.readFileSync(p, 'utf8'));
    record.format = 2;
    fs.writeFileSync(p, JSON.stringify(record));
    assert.equal(cp.load(), null);
  });

  test('a temp file left by an interrupted save is ignored and later removed', () => {
    const cp = createCheckpoint({ dir });
    cp.save({ v: 1 });
    fs.writeFileSync(path.join(dir, '.checkpoint-000000000002.tmp'), '{"half');
    assert.deepEqual(cp.load(), { v: 1 });
    assert.equal(cp.save({ v: 2 }), 2);
    cp.save({ v: 3 });
    assert.ok(!fs.readdirSync(dir).some((n) => n.endsWith('.tmp')));
  });

  test('module functions follow CHECKPOINT_DIR and CHECKPOINT_KEEP', () => {
    const saved = { dir: process.env.CHECKPOINT_DIR, keep: process.env.CHECKPOINT_KEEP };
    process.env.CHECKPOINT_DIR = dir;
    process.env.CHECKPOINT_KEEP = '2';
    try {
      checkpoint.save({ n: 1 });
      checkpoint.save({ n: 2 });
      checkpoint.save({ n: 3 });
      assert.deepEqual(checkpoint.generations(), [2, 3]);
      assert.deepEqual(checkpoint.load(), { n: 3 });
      delete process.env.CHECKPOINT_DIR;
      assert.equal(checkpoint.load(), null);
      assert.throws(() => checkpoint.save({}), /CHECKPOINT_DIR/);
    } finally {
      for (const [key, value] of [['CHECKPOINT_DIR', saved.dir], ['CHECKPOINT_KEEP', saved.keep]]) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  test('loads a checkpoint written the way the Python helper writes it', () => {
    // json.dumps with its default separators for the record: only `data`'s canonical form matters.
    const data = { z: [1, 2], a: 'é' };
    const record = { format: 1, generation: 7, saved_at: '2026-11-23T15:40:00.123Z', sha256: sha256Hex('{"a":"é","z":[1,2]}'), data };
    fs.writeFileSync(path.join(dir, 'checkpoint-000000000007.json'), JSON.stringify(record, null, 1));
    assert.deepEqual(createCheckpoint({ dir }).load(), data);
  });
});

describe('cross-language fixture', () => {
  test('the committed fixture is what the helper writes today', () => {
    assert.deepEqual(fs.readFileSync(FIXTURE_PATH), makeFixture(),
      'regenerate with: node test/fixtures/make-checkpoint-fixture.js');
  });

  test('the fixture loads back in Node', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-fx-'));
    try {
      fs.copyFileSync(FIXTURE_PATH, path.join(dir, path.basename(FIXTURE_PATH)));
      assert.deepEqual(createCheckpoint({ dir }).load(), FIXTURE_DATA);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Python verifies the fixture hash', { skip: !hasPython && 'python3 not found' }, () => {
    const script = 'import json,hashlib,sys\n'
      + 'r=json.load(open(sys.argv[1],encoding="utf-8"))\n'
      + 'c=json.dumps(r["data"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")\n'
      + 'assert r["format"] == 1 and r["generation"] == 1, r\n'
      + 'assert hashlib.sha256(c).hexdigest() == r["sha256"], "sha256 mismatch"\n';
    const out = spawnSync('python3', ['-c', script, FIXTURE_PATH]);
    assert.equal(out.status, 0, String(out.stderr));
  });

  test('the Python helper loads what Node saved, and Node loads what Python saved', { skip: !hasPythonHelper && 'unified_system.child.checkpoint not importable' }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-py-'));
    try {
      const node = createCheckpoint({ dir, keep: 5 });
      node.save(FIXTURE_DATA);
      const script = 'import json,sys\n'
        + 'from unified_system.child.checkpoint import Checkpoint\n'
        + 'cp = Checkpoint(sys.argv[1], keep=5)\n'
        + 'data = cp.load()\n'
        + 'assert data is not None, "Python could not load the Node checkpoint"\n'
        + 'data["written_by"] = "python"\n'
        + 'data["float"] = 2.5\n'
        + 'print(cp.save(data))\n';
      const out = spawnSync('python3', ['-c', script, dir], { env: pythonEnv });
      assert.equal(out.status, 0, String(out.stderr));
      assert.equal(out.stdout.toString().trim(), '2');
      assert.deepEqual(node.load(), { ...FIXTURE_DATA, written_by: 'python', float: 2.5 });
      assert.deepEqual(node.generations(), [1, 2]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
