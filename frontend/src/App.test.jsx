import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import App from './App.jsx';
import { parseEvents } from './api.js';
import useServices from './hooks/useServices.js';
import { FakeStream, installFetch, SERVICES } from './test/fakes.js';

let routes;
let http;
const KEY = 'sekret';
const keyed = (answer) => ({ headers }) => (headers.get('X-API-Key') === KEY ? answer() : [401, { error: 'missing or wrong X-API-Key' }]);

beforeEach(() => {
  FakeStream.instances = [];
  sessionStorage.clear();
  routes = {
    'GET /supervisor/api/services': keyed(() => [200, SERVICES]),
    'GET /supervisor/api/events': keyed(() => new FakeStream().response()),
    'GET /supervisor/health': () => [200, { status: 'degraded', services: { backend: 'running', bot: 'backoff' } }],
    'GET /api/trades': () => [200, { trades: [
      { id: 2, fill_id: 'f2', symbol: 'BTC-USD', side: 'sell', quantity: 0.5, price: 101.5, realized_pnl: 0.75, filled_at: '2026-01-01T00:00:02Z' },
      { id: 1, fill_id: 'f1', symbol: 'BTC-USD', side: 'buy', quantity: 0.5, price: 100, realized_pnl: null, filled_at: '2026-01-01T00:00:01Z' },
    ] }],
    'GET /api/trades/summary': () => [200, { count: 2, buys: 1, sells: 1, realized_pnl: 0.75, last_fill: null }],
    'GET /supervisor/api/services/backend/logs': keyed(() => [200, { service: 'backend', lines: ['line one', 'line two'] }]),
    'POST /supervisor/api/services/backend/restart': keyed(() => [202, { ...SERVICES[0], state: 'stopping' }]),
  };
  http = installFetch(routes);
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const calls = (method, prefix) => http.calls.filter((c) => c.method === method && c.url.startsWith(prefix));
const supervisorReads = () => http.calls.filter((c) => c.url.startsWith('/supervisor/api/'));

test('without a key nothing of the supervisor is read; the key entered once opens it all', async () => {
  render(<App />);
  expect(await screen.findByText(/Enter the supervisor's API key/)).toBeTruthy();
  await screen.findByTestId('trades-table'); // the ledger's reads need no key
  expect(supervisorReads()).toHaveLength(0);

  fireEvent.change(screen.getByTestId('api-key-input'), { target: { value: KEY } });
  fireEvent.click(screen.getByTestId('api-key-save'));
  expect((await screen.findByTestId('state-backend')).textContent).toBe('running');
  expect(sessionStorage.getItem('unified.apiKey')).toBe(KEY);
  expect(supervisorReads().every((c) => c.headers.get('X-API-Key') === KEY)).toBe(true);
  expect(calls('GET', '/supervisor/api/events')).toHaveLength(1);
  expect(screen.queryByTestId('api-key-input')).toBeNull();
});

test('the table follows the event stream, read with the key: snapshot first, refetch after a change', async () => {
  sessionStorage.setItem('unified.apiKey', KEY);
  routes['GET /supervisor/api/services'] = keyed(() => [200, []]);
  render(<App />);
  await waitFor(() => expect(FakeStream.latest()).toBeTruthy());
  const stream = FakeStream.latest();
  expect(calls('GET', '/supervisor/api/events')[0].headers.get('X-API-Key')).toBe(KEY);
  act(() => stream.emit('snapshot', { services: SERVICES }));
  expect((await screen.findByTestId('state-backend')).textContent).toBe('running');
  expect(screen.getByTestId('restarts-backend').textContent).toBe('2');

  routes['GET /supervisor/api/services'] = keyed(() => [200, [{ ...SERVICES[0], state: 'backoff', restarts: 3 }, SERVICES[1]]]);
  const before = calls('GET', '/supervisor/api/services').length;
  act(() => stream.emit('restart', { type: 'restart', service: 'backend', at: 1700000200, reason: 'crash' }));
  await waitFor(() => expect(screen.getByTestId('restarts-backend').textContent).toBe('3'));
  expect(screen.getByTestId('state-backend').textContent).toBe('backoff');
  expect(calls('GET', '/supervisor/api/services').length).toBeGreaterThan(before);
});

test('the banner shows the supervisor verdict', async () => {
  render(<App />);
  const banner = await screen.findByTestId('status-banner');
  await waitFor(() => expect(banner.textContent).toContain('degraded'));
});

test('an action sends the key as X-API-Key', async () => {
  sessionStorage.setItem('unified.apiKey', KEY);
  render(<App />);
  fireEvent.click(await screen.findByTestId('restart-backend'));
  await waitFor(() => expect(calls('POST', '/supervisor/api/services/backend/restart')).toHaveLength(1));
  expect(calls('POST', '/supervisor/api/services/backend/restart')[0].headers.get('X-API-Key')).toBe(KEY);
  expect(await screen.findByText(/restart backend: accepted/)).toBeTruthy();
});

test('a refused key is forgotten and asked for again', async () => {
  sessionStorage.setItem('unified.apiKey', 'stale');
  render(<App />);
  expect(await screen.findByText(/The API key was refused/)).toBeTruthy();
  expect(screen.getByTestId('api-key-input')).toBeTruthy();
  expect(sessionStorage.getItem('unified.apiKey')).toBeNull();
  expect(screen.queryByTestId('state-backend')).toBeNull();
});

test('the log tail of a selected service is shown', async () => {
  sessionStorage.setItem('unified.apiKey', KEY);
  render(<App />);
  await screen.findByTestId('service-row-backend');
  fireEvent.click(screen.getByTestId('open-backend'));
  const view = await screen.findByTestId('log-view');
  await waitFor(() => expect(view.textContent).toBe('line one\nline two'));
  const [logs] = calls('GET', '/supervisor/api/services/backend/logs');
  expect(logs.url).toBe('/supervisor/api/services/backend/logs?lines=500');
  expect(logs.headers.get('X-API-Key')).toBe(KEY);
});

test('trades and realized P&L come from the backend', async () => {
  render(<App />);
  const table = await screen.findByTestId('trades-table');
  await waitFor(() => expect(table.querySelectorAll('tbody tr')).toHaveLength(2));
  expect(table.textContent).toContain('BTC-USD');
  await waitFor(() => expect(screen.getByTestId('pnl').textContent).toBe('+0.75'));
  expect(calls('GET', '/api/trades?limit=50')).not.toHaveLength(0);
});

test('server-sent events are split however the chunks fall', () => {
  const seen = [];
  const onEvent = (type, data) => seen.push([type, data]);
  let rest = parseEvents(': keep-alive\n\nevent: snap', onEvent);
  rest = parseEvents(`${rest}shot\ndata: {"a":\n`, onEvent);
  rest = parseEvents(`${rest}data: 1}\r\n\r\ndata: plain\n\n`, onEvent);
  expect(seen).toEqual([['snapshot', '{"a":\n1}'], ['message', 'plain']]);
  expect(rest).toBe('');
});

function Harness() {
  const { services, live } = useServices({ apiKey: KEY, pollMs: 30, retryMs: 20 });
  return <p data-testid="harness">{live ? 'live' : 'polling'}:{services ? services.map((s) => s.state).join(',') : '-'}</p>;
}

test('while the stream is down the list is polled, and the stream is retried', async () => {
  routes['GET /supervisor/api/events'] = () => [503, { error: 'bad_gateway' }];
  render(<Harness />);
  await waitFor(() => expect(screen.getByTestId('harness').textContent).toBe('polling:running,backoff'));
  routes['GET /supervisor/api/services'] = keyed(() => [200, [{ ...SERVICES[0], state: 'stopped' }]]);
  await waitFor(() => expect(screen.getByTestId('harness').textContent).toBe('polling:stopped'));

  // Once the stream is back, polling stops.
  routes['GET /supervisor/api/events'] = keyed(() => new FakeStream().response());
  await waitFor(() => expect(screen.getByTestId('harness').textContent).toMatch(/^live/));
  const count = calls('GET', '/supervisor/api/services').length;
  await new Promise((r) => setTimeout(r, 120));
  expect(calls('GET', '/supervisor/api/services').length).toBe(count);

  // A cut stream is retried.
  const streams = FakeStream.instances.length;
  act(() => FakeStream.latest().fail());
  await waitFor(() => expect(FakeStream.instances.length).toBeGreaterThan(streams));
  await waitFor(() => expect(screen.getByTestId('harness').textContent).toMatch(/^live/));
});

test('a reconnect replays the snapshot: the timeline marks it and keeps its rows', async () => {
  sessionStorage.setItem('unified.apiKey', KEY);
  render(<App />);
  await waitFor(() => expect(FakeStream.latest()).toBeTruthy());
  const first = FakeStream.latest();
  act(() => first.emit('snapshot', { services: SERVICES }));
  act(() => first.emit('restart', { type: 'restart', service: 'backend', at: 1700000200, reason: 'crash' }));
  const timeline = await screen.findByTestId('timeline');
  await waitFor(() => expect(timeline.textContent).toContain('restart: crash'));
  act(() => first.fail()); // the supervisor went away
  await waitFor(() => expect(FakeStream.instances.length).toBeGreaterThan(1), { timeout: 5000 });
  act(() => FakeStream.latest().emit('snapshot', { services: SERVICES }));
  await waitFor(() => expect(screen.getByTestId('timeline').textContent).toContain('reconnected: snapshot replayed'));
  expect(screen.getByTestId('timeline').textContent).toContain('restart: crash');
});
