import { vi } from 'vitest';

// A controllable event stream, as fetch reads it: tests push named events into it. The
// supervisor's route answers `stream.response()`.
export class FakeStream {
  static instances = [];

  constructor() {
    this.closed = false;
    this.body = new ReadableStream({
      start: (controller) => { this.controller = controller; },
      cancel: () => { this.closed = true; },
    });
    FakeStream.instances.push(this);
  }

  response() {
    return new Response(this.body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  }

  emit(type, data) {
    const head = type === 'message' ? '' : `event: ${type}\n`;
    this.controller.enqueue(new TextEncoder().encode(`${head}data: ${JSON.stringify(data)}\n\n`));
  }

  // The connection is cut: the reader sees an error, the hook retries.
  fail() {
    this.closed = true;
    this.controller.error(new TypeError('network error'));
  }

  static latest() {
    return FakeStream.instances[FakeStream.instances.length - 1];
  }
}

const jsonResponse = (status, body) => new Response(body === undefined ? '' : JSON.stringify(body), {
  status,
  headers: { 'Content-Type': 'application/json' },
});

// fetch stub answering from a table of handlers: { 'GET /path': (request) => [status, body] }.
// Handlers may be changed by the test at any time; the query string is part of the key only
// when the table has such a key.
export function installFetch(routes) {
  const calls = [];
  const fetchMock = vi.fn(async (url, init = {}) => {
    const method = (init.method || 'GET').toUpperCase();
    const headers = new Headers(init.headers || {});
    calls.push({ method, url, headers });
    const path = url.split('?')[0];
    const handler = routes[`${method} ${url}`] || routes[`${method} ${path}`];
    if (!handler) return jsonResponse(404, { detail: `no route for ${method} ${url}` });
    const answer = handler({ method, url, headers });
    if (answer instanceof Response) return answer;
    const [status, body] = answer;
    return jsonResponse(status, body);
  });
  vi.stubGlobal('fetch', fetchMock);
  return { calls, fetchMock };
}

export const SERVICES = [
  {
    name: 'backend', state: 'running', ready: true, health: 'healthy', pid: 4242,
    instances: [{ index: 0, pid: 4242, state: 'running' }], uptime_seconds: 3725, restarts: 2,
    last_exit: { code: 1, signal: null, reason: 'crash', at: 1700000000 }, circuit: 'closed',
    depends_on: [], critical: true, memory_rss_bytes: 52428800, cpu_percent: 1.5,
  },
  {
    name: 'bot', state: 'backoff', ready: false, health: 'unhealthy', pid: null,
    instances: [], uptime_seconds: 0, restarts: 5,
    last_exit: { code: null, signal: 'SIGKILL', reason: 'freeze', at: 1700000100 }, circuit: 'open',
    depends_on: ['backend'], critical: false, memory_rss_bytes: null, cpu_percent: null,
  },
];
