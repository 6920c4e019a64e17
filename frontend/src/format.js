// Formatting helpers for the tables: pure functions, tested in format.test.js.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(Number(bytes))) return '—';
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

// 0 -> "0s", 75 -> "1m 15s", 3700 -> "1h 1m", 90061 -> "1d 1h"; two units at most.
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return '—';
  let s = Math.max(0, Math.floor(Number(seconds)));
  const parts = [];
  for (const [size, label] of [[86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']]) {
    if (s >= size || (label === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${label}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

// last_exit {code, signal, reason, at} -> "crash, code 1" / "stop, SIGTERM" / "—".
export function formatLastExit(lastExit) {
  if (!lastExit) return '—';
  const how = lastExit.signal ? lastExit.signal : (lastExit.code !== null && lastExit.code !== undefined ? `code ${lastExit.code}` : '');
  return [lastExit.reason, how].filter(Boolean).join(', ') || '—';
}

export function formatTime(value) {
  if (value === null || value === undefined || value === '') return '—';
  // Numbers are taken as Unix seconds (the supervisor's `at`), strings as ISO dates.
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString();
}

export function formatMoney(value) {
  if (value === null || value === undefined || value === '' || Number.isNaN(Number(value))) return '—';
  const n = Number(value);
  const sign = n > 0 ? '+' : n < 0 ? '−' : '';
  return `${sign}${Math.abs(n).toFixed(2)}`;
}

// A price to 4 decimals ("101.7590"); "—" when absent.
export function formatPrice(value) {
  if (value === null || value === undefined || value === '' || Number.isNaN(Number(value))) return '—';
  return Number(value).toFixed(4);
}

// Badge colour group of a supervisor state (SPEC §4).
export function stateTone(state) {
  switch (state) {
    case 'running': return 'good';
    case 'pending':
    case 'building':
    case 'starting': return 'info';
    case 'stopping':
    case 'backoff': return 'warn';
    case 'fatal': return 'bad';
    default: return 'muted'; // stopped, exited, disabled, unknown
  }
}

export function healthTone(health) {
  switch (health) {
    case 'healthy': return 'good';
    case 'unhealthy': return 'bad';
    case 'frozen': return 'warn';
    default: return 'muted';
  }
}
