// Everything the dashboard asks of the gateway. All paths are same-origin: the Node server
// (or the Vite dev server) forwards /api to the backend and /supervisor to the supervisor.

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

export async function getJson(url, { okStatuses = [] } = {}) {
  const res = await fetch(url, { headers: { Accept: 'application/json' } });
  const body = await readJson(res);
  if (!res.ok && !okStatuses.includes(res.status)) throw new HttpError(res.status, body);
  return body;
}

export const fetchServices = async () => {
  const body = await getJson('/supervisor/api/services');
  return Array.isArray(body) ? body : (body && body.services) || [];
};

// 503 still carries the verdict ("unhealthy"), so it is not an error here.
export const fetchSupervisorHealth = () => getJson('/supervisor/health', { okStatuses: [503] });

export const fetchLogs = (name, lines = 200) =>
  getJson(`/supervisor/api/services/${encodeURIComponent(name)}/logs?lines=${lines}`);

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
