'use strict';
// The Node checkpoint helper: the same files as the Python helper
// (unified_system.child.checkpoint), see docs/ARCHITECTURE.md "Checkpoint format".
//
//   checkpoint-<generation, 12 digits>.json =
//   {"data":{...},"format":1,"generation":7,"saved_at":"...Z","sha256":"<sha256 of canonical data>"}
//
// save() writes .checkpoint-<gen>.tmp, fsyncs it, renames it into place, fsyncs the
// directory, then prunes generations beyond `keep`. load() returns the data of the newest
// generation that parses and whose hash matches, or null. The calls are synchronous: a
// checkpoint is small and rare, and a save that returns has reached the disk.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { canonicalJson } = require('./canonical-json');

const FORMAT = 1;
const FILE_RE = /^checkpoint-(\d{12})\.json$/;
const TMP_RE = /^\.checkpoint-(\d{12})\.tmp$/;

const pad = (generation) => String(generation).padStart(12, '0');
const fileName = (generation) => `checkpoint-${pad(generation)}.json`;
const sha256Hex = (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');

function fsyncPath(p, flags) {
  const fd = fs.openSync(p, flags);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function listDir(dir) {
  try {
    return fs.readdirSync(dir);
  } catch (err) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
}

function createCheckpoint({ dir, keep = 3 } = {}) {
  if (!dir) throw new Error('checkpoint directory not given (CHECKPOINT_DIR is not set)');
  const keepN = Math.max(1, Number(keep) || 3);

  // Generations on disk, oldest first (whatever their content), as the Python helper lists them.
  function generations() {
    return listDir(dir)
      .map((name) => FILE_RE.exec(name))
      .filter(Boolean)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  const pathFor = (generation) => path.join(dir, fileName(generation));

  function readValid(generation) {
    let record;
    try {
      record = JSON.parse(fs.readFileSync(pathFor(generation), 'utf8'));
    } catch {
      return null; // unreadable or torn: fall back to an older generation
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) return null;
    if (record.format !== FORMAT || !('data' in record) || typeof record.sha256 !== 'string') return null;
    let actual;
    try {
      actual = sha256Hex(canonicalJson(record.data));
    } catch {
      return null;
    }
    if (actual !== record.sha256) return null;
    return { generation, saved_at: record.saved_at, data: record.data };
  }

  // The newest valid record { generation, saved_at, data }, or null.
  function loadRecord() {
    for (const generation of generations().reverse()) {
      const record = readValid(generation);
      if (record) return record;
    }
    return null;
  }

  function load() {
    const record = loadRecord();
    return record ? record.data : null;
  }

  function prune(current) {
    for (const generation of generations().slice(0, -keepN)) {
      fs.rmSync(pathFor(generation), { force: true });
    }
    // Temp files of earlier saves that died before their rename.
    for (const name of listDir(dir)) {
      const m = TMP_RE.exec(name);
      if (m && Number(m[1]) < current) fs.rmSync(path.join(dir, name), { force: true });
    }
  }

  // Returns the new generation's number (as the Python helper does).
  function save(data, { now = new Date() } = {}) {
    const canonical = canonicalJson(data);
    fs.mkdirSync(dir, { recursive: true });
    const generation = (generations().pop() || 0) + 1;
    const digest = sha256Hex(canonical);
    // Sorted keys put `data` first; it is spliced in as the exact text that was hashed.
    const rest = canonicalJson({ format: FORMAT, generation, saved_at: now.toISOString(), sha256: digest });
    const record = `{"data":${canonical},${rest.slice(1)}`;
    const finalPath = pathFor(generation);
    const tmpPath = path.join(dir, `.checkpoint-${pad(generation)}.tmp`);
    const fd = fs.openSync(tmpPath, 'w', 0o600);
    try {
      fs.writeFileSync(fd, `${record}\n`, 'utf8');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmpPath, finalPath);
    fsyncPath(dir, 'r'); // makes the rename itself durable
    prune(generation);
    return generation;
  }

  return { dir, keep: keepN, save, load, loadRecord, generations, pathFor };
}

function fromEnv(env = process.env) {
  return createCheckpoint({ dir: env.CHECKPOINT_DIR, keep: env.CHECKPOINT_KEEP || 3 });
}

module.exports = {
  FORMAT,
  createCheckpoint,
  fromEnv,
  canonicalJson,
  sha256Hex,
  save: (data, options) => fromEnv().save(data, options),
  load: () => (process.env.CHECKPOINT_DIR ? fromEnv().load() : null),
  loadRecord: () => (process.env.CHECKPOINT_DIR ? fromEnv().loadRecord() : null),
  generations: () => (process.env.CHECKPOINT_DIR ? fromEnv().generations() : []),
};
