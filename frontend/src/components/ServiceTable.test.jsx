import { afterEach, expect, test, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import ServiceTable from './ServiceTable.jsx';
import { SERVICES } from '../test/fakes.js';

afterEach(cleanup);

test('renders one row per service from a snapshot', () => {
  render(<ServiceTable services={SERVICES} />);
  const row = screen.getByTestId('service-row-backend');
  expect(within(row).getByText('backend')).toBeTruthy();
  expect(screen.getByTestId('state-backend').textContent).toBe('running');
  expect(screen.getByTestId('state-backend').className).toContain('badge-good');
  expect(screen.getByTestId('restarts-backend').textContent).toBe('2');
  expect(row.textContent).toContain('50.0 MiB');
  expect(row.textContent).toContain('1h 2m');
  expect(row.textContent).toContain('4242');
  expect(row.textContent).toContain('crash, code 1');

  const bot = screen.getByTestId('service-row-bot');
  expect(screen.getByTestId('state-bot').className).toContain('badge-warn');
  expect(screen.getByTestId('restarts-bot').textContent).toBe('5');
  expect(bot.textContent).toContain('freeze, SIGKILL');
  expect(bot.textContent).toContain('circuit open');
  expect(bot.textContent).toContain('opt');
});

test('action buttons call back with the service and action', () => {
  const onAction = vi.fn();
  render(<ServiceTable services={SERVICES} onAction={onAction} />);
  fireEvent.click(screen.getByTestId('restart-backend'));
  fireEvent.click(screen.getByTestId('stop-bot'));
  fireEvent.click(screen.getByTestId('start-bot'));
  expect(onAction.mock.calls).toEqual([['backend', 'restart'], ['bot', 'stop'], ['bot', 'start']]);
});

test('a busy service has its buttons disabled', () => {
  render(<ServiceTable services={SERVICES} busy={new Set(['bot'])} />);
  expect(screen.getByTestId('restart-bot').disabled).toBe(true);
  expect(screen.getByTestId('restart-backend').disabled).toBe(false);
});

test('loading and empty lists say so', () => {
  const { rerender } = render(<ServiceTable services={null} />);
  expect(screen.getByText(/Loading services/)).toBeTruthy();
  rerender(<ServiceTable services={[]} />);
  expect(screen.getByText('No services.')).toBeTruthy();
});
