import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import App from './App.jsx';
import useServices from './hooks/useServices.js';
import { FakeEventSource, installFetch, SERVICES } from './test/fakes.js';

let routes;
let http;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  sessionStorage.clear();
  routes = {
    'GET /supervisor/api/services': () => [200, SERVICES],
    'GET /supervisor/health': () => [200, { status: 'degraded', services: { backend: 'running', bot: 'backoff' } }],
    'GET /api/trades': () => [200, { trades: [
      { id: 2, fill_id: 'f2', symbol: 'BTC-USD', side: 'sell', quantity: 0.5, price: 101.5, realized_pnl: 0.75, filled_at: '2026-01-01T00:00:02Z' },
      { id: 1, fill_id: 'f1', symbol: 'BTC-USD', side: 'buy', quantity: 0.5, price: 100, realized_pnl: null, filled_at: '2026-01-01T00:00:01Z' },
    ] }],
    'GET /api/trades/summary': () => [200, { count: 2, buys: 1, sells: 1, realized_pnl: 0.75, last_fill: null }],
    'GET /supervisor/api/services/backend/logs': () => [200, { service: 'backend', lines: ['line one', 'line two'] }],
    'POST /supervisor/api/services/backend/restart': ({ headers }) => (headers.get('X-API-Key') === 'sekret'
      ? [202, { ...SERVICES[0], state: 'stopping' }]
      : [401, { detail: 'invalid API key' }]),
  };
  http = installFetch(routes);
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const calls = (method, prefix) => http.calls.filter((c) => c.method === method && c.url.startsWith(prefix));

test('the table follows the event stream: snapshot first, refetch after a change', async () => {
  routes['GET /supervisor/api/services'] = () => [200, []];
  render(<App />);
  const es = FakeEventSource.latest();
  expect(es.url).toBe('/supervisor/api/events');
  act(() => {
    es.open();
    es.emit('snapshot', { services: SERVICES });
  });
  expect((await screen.findByTestId('state-backend')).textContent).toBe('running');
  expect(screen.getByTestId('restarts-backend').textContent).toBe('2');

  routes['GET /supervisor/api/services'] = () => [200, [{ ...SERVICES[0], state: 'backoff', restarts: 3 }, SERVICES[1]]];
  const before = calls('GET', '/supervisor/api/services').length;
  act(() => es.emit('restart', { type: 'restart', service: 'backend', at: 1700000200, reason: 'crash' }));
  await waitFor(() => expect(screen.getByTestId('restarts-backend').textContent).toBe('3'));
  expect(screen.getByTestId('state-backend').textContent).toBe('backoff');
  expect(calls('GET', '/supervisor/api/services').length).toBeGreaterThan(before);
});

test('the banner shows the supervisor verdict', async () => {
  render(<App />);
  const banner = await screen.findByTestId('status-banner');
  await waitFor(() => expect(banner.textContent).toContain('degraded'));
});

test('an action asks for the key first, then sends it as X-API-Key', async () => {
  render(<App />);
  fireEvent.click(await screen.findByTestId('restart-backend'));
  expect(await screen.findByText(/An API key is needed to restart backend/)).toBeTruthy();
  expect(calls('POST', '/supervisor/api/services/backend/restart')).toHaveLength(0);

  fireEvent.change(screen.getByTestId('api-key-input'), { target: { value: 'sekret' } });
  fireEvent.click(screen.getByTestId('api-key-save'));
  await waitFor(() => expect(calls('POST', '/supervisor/api/services/backend/restart')).toHaveLength(1));
  expect(calls('POST', '/supervisor/api/services/backend/restart')[0].headers.get('X-API-Key')).toBe('sekret');
  expect(sessionStorage.getItem('unified.apiKey')).toBe('sekret');
  expect(await screen.findByText(/restart backend: accepted/)).toBeTruthy();
  expect(screen.queryByTestId('api-key-input')).toBeNull();
});

test('a 401 forgets the stored key and asks again', async () => {
  sessionStorage.setItem('unified.apiKey', 'stale');
  render(<App />);
  expect(screen.queryByTestId('api-key-input')).toBeNull();
  fireEvent.click(await screen.findByTestId('restart-backend'));
  expect(await screen.findByText(/The API key was refused/)).toBeTruthy();
  expect(screen.getByTestId('api-key-input')).toBeTruthy();
  expect(sessionStorage.getItem('unified.apiKey')).toBeNull();
});

test('the log tail of a selected service is shown', async () => {
  render(<App />);
  await screen.findByTestId('service-row-backend');
  fireEvent.click(screen.getAllByText('Logs')[0]);
  const view = await screen.findByTestId('log-view');
  await waitFor(() => expect(view.textContent).toBe('line one\nline two'));
  expect(calls('GET', '/supervisor/api/services/backend/logs')[0].url).toBe('/supervisor/api/services/backend/logs?lines=200');
});

test('trades and realized P&L come from the backend', async () => {
  render(<App />);
  const table = await screen.findByTestId('trades-table');
  await waitFor(() => expect(table.querySelectorAll('tbody tr')).toHaveLength(2));
  expect(table.textContent).toContain('BTC-USD');
  await waitFor(() => expect(screen.getByTestId('pnl').textContent).toBe('+0.75'));
  expect(calls('GET', '/api/trades?limit=50')).not.toHaveLength(0);
});

function Harness() {
  const { services, live } = useServices({ pollMs: 30 });
  return <p data-testid="harness">{live ? 'live' : 'polling'}:{services ? services.map((s) => s.state).join(',') : '-'}</p>;
}

test('while the stream is down the list is polled', async () => {
  render(<Harness />);
  const es = FakeEventSource.latest();
  act(() => es.fail());
  await waitFor(() => expect(screen.getByTestId('harness').textContent).toBe('polling:running,backoff'));
  routes['GET /supervisor/api/services'] = () => [200, [{ ...SERVICES[0], state: 'stopped' }]];
  await waitFor(() => expect(screen.getByTestId('harness').textContent).toBe('polling:stopped'));

  // Once the stream is back, polling stops.
  act(() => es.open());
  await waitFor(() => expect(screen.getByTestId('harness').textContent).toMatch(/^live/));
  const count = calls('GET', '/supervisor/api/services').length;
  await new Promise((r) => setTimeout(r, 120));
  expect(calls('GET', '/supervisor/api/services').length).toBe(count);
});
