// Pure helpers of the message-bus panel (Bus.jsx): what the gateway's /bus/events sends,
// turned into what the panel shows. Anything malformed is dropped, never shown.

export const MAX_FILLS = 20;

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const count = (v) => (Number.isFinite(v) && v >= 0 ? v : 0);

// The newest fills first, at most `max`; a batch is `{ fills: [...], count }`.
export function addFills(list, batch, max = MAX_FILLS) {
  if (!isObject(batch) || !Array.isArray(batch.fills)) return list;
  const fresh = batch.fills.filter(isObject).slice(-max).reverse();
  return [...fresh, ...list].slice(0, max);
}

// One row per consumer (or per stream without consumers): stream depth and consumer lag.
export function depthRows(depth) {
  if (!isObject(depth) || !Array.isArray(depth.streams)) return [];
  const rows = [];
  for (const s of depth.streams.filter(isObject)) {
    const name = String(s.name ?? '?');
    const consumers = Array.isArray(s.consumers) ? s.consumers.filter(isObject) : [];
    if (consumers.length === 0) rows.push({ stream: name, messages: count(s.messages), consumer: null, lag: null, ackPending: null });
    for (const c of consumers) {
      rows.push({ stream: name, messages: count(s.messages), consumer: String(c.name ?? '?'),
        lag: count(c.pending), ackPending: count(c.ack_pending) });
    }
  }
  return rows;
}

// The dead-letter stream's depth from a depth event, or null when it is not there.
export function dlqDepth(depth) {
  if (!isObject(depth) || !Array.isArray(depth.streams)) return null;
  const dlq = depth.streams.find((s) => isObject(s) && s.name === 'TASKS_DLQ');
  return dlq ? count(dlq.messages) : null;
}

// "12.3 s old" for a stale answer's age in seconds.
export function staleText(age) {
  const n = Number(age);
  if (!Number.isFinite(n) || n < 0) return 'stale';
  if (n < 60) return `stale · ${n.toFixed(1)} s old`;
  return `stale · ${Math.round(n / 60)} min old`;
}
