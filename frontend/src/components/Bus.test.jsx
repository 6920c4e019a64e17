import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import Bus from './Bus.jsx';
import Trades from './Trades.jsx';
import { addFills, depthRows, dlqDepth, staleText } from '../live/bus.js';
import { FakeStream, installFetch } from '../test/fakes.js';

const KEY = 'sekret';
let routes;
let http;
let entries;

beforeEach(() => {
  FakeStream.instances = [];
  entries = [
    { dlq_seq: 4, task_id: 17, type: 'fail', priority: 'high', deliveries: 3, error: "TaskError: task type 'fail' always fails" },
    { dlq_seq: 5, task_id: 18, type: 'echo', priority: 'low', deliveries: 1, error: '<img src=x onerror=alert(1)>' },
  ];
  routes = {
    'GET /bus/events': ({ headers }) => (headers.get('X-API-Key') === KEY ? new FakeStream().response() : [401, {}]),
    'GET /api/tasks/dead-letter': () => [200, { tasks: entries }],
    'POST /bus/dlq/4/requeue': ({ headers }) => {
      if (headers.get('X-API-Key') !== KEY) return [401, {}];
      entries = entries.filter((e) => e.dlq_seq !== 4);
      return [201, { task: { id: 30 }, requeued_from: 4 }];
    },
    'DELETE /bus/dlq/5': ({ headers }) => {
      if (headers.get('X-API-Key') !== KEY) return [401, {}];
      entries = entries.filter((e) => e.dlq_seq !== 5);
      return [204, undefined];
    },
  };
  http = installFetch(routes);
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const DEPTH = {
  streams: [
    { name: 'TASKS', messages: 110, consumers: [{ name: 'tasks-high', pending: 10, ack_pending: 1 }, { name: 'tasks-low', pending: 100, ack_pending: 0 }] },
    { name: 'TASKS_DLQ', messages: 2, consumers: [] },
  ],
};

test('the panel shows live fills, each stream depth and consumer lag from the gateway stream', async () => {
  render(<Bus apiKey={KEY} />);
  await waitFor(() => expect(FakeStream.latest()).toBeTruthy());
  const stream = FakeStream.latest();
  expect(http.calls.find((c) => c.url === '/bus/events').headers.get('X-API-Key')).toBe(KEY);
  stream.emit('hello', { connected: true });
  stream.emit('depth', DEPTH);
  stream.emit('fills', { count: 2, fills: [
    { fill_id: 'a', symbol: 'SIM', side: 'buy', quantity: 1, price: 100 },
    { fill_id: 'b', symbol: 'SIM', side: 'sell', quantity: 2, price: 101 },
  ] });
  expect((await screen.findByTestId('depth-TASKS-tasks-low')).textContent).toContain('100');
  expect(screen.getByTestId('depth-TASKS-tasks-high').textContent).toMatch(/TASKS110tasks-high101/);
  expect(screen.getByTestId('depth-TASKS_DLQ').textContent).toContain('2');
  await waitFor(() => expect(screen.getByTestId('bus-fills').textContent).toMatch(/sell.*buy/));
  expect(screen.getByTestId('bus-live').textContent).toBe('live');
});

test('the dead-letter queue is listed with its errors as text, and re-queue and drop go out with the key', async () => {
  render(<Bus apiKey={KEY} />);
  const row = await screen.findByTestId('dlq-4');
  expect(row.textContent).toContain("always fails");
  expect(screen.getByTestId('dlq-5').textContent).toContain('<img src=x onerror=alert(1)>');
  expect(document.querySelector('img')).toBeNull();

  fireEvent.click(screen.getByTestId('requeue-4'));
  await waitFor(() => expect(screen.queryByTestId('dlq-4')).toBeNull());
  fireEvent.click(screen.getByTestId('drop-5'));
  await waitFor(() => expect(screen.queryByTestId('dlq-5')).toBeNull());
  const writes = http.calls.filter((c) => c.method !== 'GET');
  expect(writes.map((c) => `${c.method} ${c.url} ${c.headers.get('X-API-Key')}`)).toEqual([
    `POST /bus/dlq/4/requeue ${KEY}`, `DELETE /bus/dlq/5 ${KEY}`,
  ]);
});

test('a new dead letter (task event or DLQ depth change) re-reads the list', async () => {
  entries = [];
  render(<Bus apiKey={KEY} />);
  await waitFor(() => expect(FakeStream.latest()).toBeTruthy());
  expect(await screen.findByText('Empty.')).toBeTruthy();
  entries = [{ dlq_seq: 9, task_id: 40, type: 'fail', priority: 'normal', deliveries: 3, error: 'boom' }];
  FakeStream.latest().emit('task', { id: 40, state: 'dead', error: 'boom' });
  expect((await screen.findByTestId('dlq-9')).textContent).toContain('boom');
});

test('a refused re-queue shows the error and keeps the row', async () => {
  routes['POST /bus/dlq/4/requeue'] = () => [503, { error: 'no_tasks_token' }];
  render(<Bus apiKey={KEY} />);
  fireEvent.click(await screen.findByTestId('requeue-4'));
  expect((await screen.findByRole('alert')).textContent).toContain('503');
  expect(screen.getByTestId('dlq-4')).toBeTruthy();
});

test('a gateway without the bus (404) is said so, and not asked again', async () => {
  routes['GET /bus/events'] = () => [404, { error: 'not_found' }];
  render(<Bus apiKey={KEY} />);
  await waitFor(() => expect(screen.getByTestId('bus-live').textContent).toBe('no bus'));
  expect(http.calls.filter((c) => c.url === '/bus/events')).toHaveLength(1);
});

test('the trade summary served stale by the gateway is marked stale with its age', async () => {
  routes['GET /api/trades'] = () => [200, { trades: [] }];
  routes['GET /api/trades/summary'] = () => [200, { count: 3, buys: 2, sells: 1, realized_pnl: 1.5, stale: true, stale_age_seconds: 12.3 }];
  render(<Trades />);
  expect((await screen.findByTestId('summary-stale')).textContent).toBe('stale · 12.3 s old');
});

test('a fresh summary carries no stale mark', async () => {
  routes['GET /api/trades'] = () => [200, { trades: [] }];
  routes['GET /api/trades/summary'] = () => [200, { count: 3, buys: 2, sells: 1, realized_pnl: 1.5 }];
  render(<Trades />);
  await screen.findByTestId('pnl');
  await waitFor(() => expect(screen.getByTestId('pnl').textContent).not.toBe('—'));
  expect(screen.queryByTestId('summary-stale')).toBeNull();
});

test('the pure helpers drop malformed input', () => {
  expect(addFills([], null)).toEqual([]);
  expect(addFills([], { fills: [1, null, { fill_id: 'x' }] })).toEqual([{ fill_id: 'x' }]);
  const many = { fills: Array.from({ length: 50 }, (_, i) => ({ fill_id: `f${i}` })) };
  const list = addFills([], many);
  expect(list).toHaveLength(20);
  expect(list[0].fill_id).toBe('f49');
  expect(depthRows({ streams: [null, { name: 'X', messages: -5, consumers: 'no' }] }))
    .toEqual([{ stream: 'X', messages: 0, consumer: null, lag: null, ackPending: null }]);
  expect(depthRows('__proto__')).toEqual([]);
  expect(dlqDepth(DEPTH)).toBe(2);
  expect(dlqDepth({ streams: [] })).toBeNull();
  expect(staleText('x')).toBe('stale');
  expect(staleText(125)).toBe('stale · 2 min old');
});
