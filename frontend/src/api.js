// Everything the dashboard asks of the gateway. All paths are same-origin: the Node server
// (or the Vite dev server) forwards /api to the backend and /supervisor to the supervisor.
// Every supervisor read but /supervisor/health needs the operator's key as X-API-Key.

export const EVENTS_URL = '/supervisor/api/events';
const KEY_STORAGE = 'unified.apiKey';

export class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}${body && body.detail ? `: ${typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail)}` : ''}`);
    this.status = status;
    this.body = body;
  }
}

async function readJson(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 200) };
  }
}

const keyHeaders = (apiKey) => (apiKey ? { 'X-API-Key': apiKey } : {});

export async function getJson(url, { okStatuses = [], apiKey = '' } = {}) {
  const res = await fetch(url, { headers: { Accept: 'application/json', ...keyHeaders(apiKey) } });
  const body = await readJson(res);
  if (!res.ok && !okStatuses.includes(res.status)) throw new HttpError(res.status, body);
  return body;
}

export const fetchServices = async (apiKey) => {
  const body = await getJson('/supervisor/api/services', { apiKey });
  return Array.isArray(body) ? body : (body && body.services) || [];
};

// 503 still carries the verdict ("unhealthy"), so it is not an error here.
export const fetchSupervisorHealth = () => getJson('/supervisor/health', { okStatuses: [503] });

export const fetchLogs = (name, lines = 200, apiKey = '') =>
  getJson(`/supervisor/api/services/${encodeURIComponent(name)}/logs?lines=${lines}`, { apiKey });

export const fetchTrades = (limit = 50) => getJson(`/api/trades?limit=${limit}`);
export const fetchTradeSummary = () => getJson('/api/trades/summary');

export async function serviceAction(name, action, apiKey) {
  const res = await fetch(`/supervisor/api/services/${encodeURIComponent(name)}/${action}`, {
    method: 'POST',
    headers: { 'X-API-Key': apiKey, Accept: 'application/json' },
  });
  const body = await readJson(res);
  if (!res.ok) throw new HttpError(res.status, body);
  return body;
}

// Splits server-sent-event text into { type, data } events; returns the unfinished tail.
export function parseEvents(text, onEvent) {
  const blocks = text.split(/\r?\n\r?\n/);
  const rest = blocks.pop();
  for (const block of blocks) {
    let type = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue; // a comment (keep-alive)
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) onEvent(type, data.join('\n'));
  }
  return rest;
}

// The supervisor's event stream, read with fetch: EventSource cannot send X-API-Key.
// Resolves when the stream ends, rejects with HttpError when it is refused.
export async function readEventStream(apiKey, { onOpen, onEvent, signal, url = EVENTS_URL }) {
  const res = await fetch(url, {
    headers: { Accept: 'text/event-stream', ...keyHeaders(apiKey) },
    cache: 'no-store',
    signal,
  });
  if (!res.ok || !res.body) throw new HttpError(res.status, await readJson(res));
  onOpen();
  const reader = res.body.getReader();
  const cancel = () => reader.cancel().catch(() => {});
  if (signal) signal.addEventListener('abort', cancel, { once: true });
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = parseEvents(buffer + decoder.decode(value, { stream: true }), onEvent);
    }
  } finally {
    if (signal) signal.removeEventListener('abort', cancel);
  }
}

export function loadApiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return '';
  }
}

export function storeApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage may be disabled; the key then lives only in memory
  }
}

// Panels beyond the service list (all behind the key).
export const fetchDiagnostics = (apiKey) => getJson('/supervisor/api/diagnostics', { apiKey });
export const fetchSuggestions = (apiKey) => getJson('/supervisor/api/suggestions', { apiKey });
export const fetchCrashes = (apiKey) => getJson('/supervisor/api/crashes', { apiKey });
export const fetchCrash = (file, apiKey) =>
  getJson(`/supervisor/api/crashes/${encodeURIComponent(file)}`, { apiKey });
// A supervisor without the history route answers 404: the charts then start from now.
export const fetchHistory = (name, since, apiKey) =>
  getJson(`/supervisor/api/services/${encodeURIComponent(name)}/history?since=${Math.floor(since)}`,
    { apiKey, okStatuses: [404] });

// The message bus (the gateway's /bus routes, behind the key): live fills, stream depth and
// consumer lag, task events; and the dead-letter queue with its two buttons.
export const BUS_EVENTS_URL = '/bus/events';
// 404: the AI task queue is off (AI_ENABLED=false), so there is no dead-letter queue.
export const fetchDeadLetters = () => getJson('/api/tasks/dead-letter', { okStatuses: [404] });

export async function deadLetterAction(seq, action, apiKey) {
  const url = action === 'requeue' ? `/bus/dlq/${encodeURIComponent(seq)}/requeue` : `/bus/dlq/${encodeURIComponent(seq)}`;
  const res = await fetch(url, {
    method: action === 'requeue' ? 'POST' : 'DELETE',
    headers: { 'X-API-Key': apiKey, Accept: 'application/json' },
  });
  const body = await readJson(res);
  if (!res.ok) throw new HttpError(res.status, body);
  return body;
}
