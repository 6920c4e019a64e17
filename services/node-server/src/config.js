'use strict';
// Everything the server reads from its environment, in one place.
const path = require('node:path');

const DEFAULT_FRONTEND_DIST = path.resolve(__dirname, '..', '..', '..', 'frontend', 'dist');

function intFrom(value, fallback, name) {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

function trustProxyFrom(value) {
  if (value === undefined || value === '') return false;
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value; // express accepts "loopback", a list of addresses, ...
}

// The heartbeat period is half the supervisor's timeout, as sd_notify's WATCHDOG_USEC asks.
function heartbeatIntervalMs(env) {
  const usec = intFrom(env.WATCHDOG_USEC, 0, 'WATCHDOG_USEC');
  if (usec === 0) return 2000;
  return Math.max(50, Math.floor(usec / 2000));
}

// Socket activation applies only when the variables were meant for this very process.
function listenFd(env, pid) {
  const fds = intFrom(env.LISTEN_FDS, 0, 'LISTEN_FDS');
  if (fds < 1 || env.LISTEN_PID !== String(pid)) return null;
  return 3;
}

function loadConfig(env = process.env, pid = process.pid) {
  const pythonPort = env.PYTHON_PORT || '8000';
  const supervisorPort = env.SUPERVISOR_PORT || '8900';
  return {
    port: intFrom(env.PORT, 3000, 'PORT'),
    host: env.HOST || '127.0.0.1',
    listenFd: listenFd(env, pid),
    backendUrl: env.BACKEND_URL || `http://127.0.0.1:${pythonPort}`,
    supervisorUrl: env.SUPERVISOR_URL || `http://127.0.0.1:${supervisorPort}`,
    rateLimitPerMinute: intFrom(env.RATE_LIMIT_PER_MINUTE, 600, 'RATE_LIMIT_PER_MINUTE'),
    bodyLimit: env.BODY_LIMIT || '1mb',
    trustProxy: trustProxyFrom(env.TRUST_PROXY),
    frontendDist: path.resolve(env.FRONTEND_DIST || DEFAULT_FRONTEND_DIST),
    heartbeat: env.UNIFIED_HEARTBEAT_URL && env.UNIFIED_TOKEN
      ? { url: env.UNIFIED_HEARTBEAT_URL, token: env.UNIFIED_TOKEN, intervalMs: heartbeatIntervalMs(env) }
      : null,
    shutdownGraceMs: intFrom(env.SHUTDOWN_GRACE_MS, 1000, 'SHUTDOWN_GRACE_MS'),
    service: env.UNIFIED_SERVICE || 'node-server',
    // The message bus (SPEC §9 "The message bus"): unset, the gateway only proxies HTTP.
    natsUrl: env.NATS_URL || null,
    natsToken: env.NATS_TOKEN || null, // the broker's token (services.yaml `secrets`)
    busTimeoutMs: intFrom(env.BUS_REQUEST_TIMEOUT_MS, 1000, 'BUS_REQUEST_TIMEOUT_MS'),
    // The dead-letter buttons' writes reach the backend with TASKS_TOKEN, a secret that may
    // only re-queue or drop dead letters (never write the trade ledger).
    tasksToken: env.TASKS_TOKEN || null,
  };
}

module.exports = { loadConfig, heartbeatIntervalMs, listenFd, DEFAULT_FRONTEND_DIST };
