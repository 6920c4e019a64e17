import { describe, expect, test } from 'vitest';
import { formatBytes, formatDuration, formatLastExit, formatMoney, formatPrice, healthTone, stateTone } from './format.js';

describe('formatBytes', () => {
  test.each([
    [null, '—'], [undefined, '—'], [0, '0 B'], [512, '512 B'], [1024, '1.0 KiB'], [1536, '1.5 KiB'],
    [52428800, '50.0 MiB'], [150 * 1024 * 1024, '150 MiB'], [3 * 1024 ** 3, '3.0 GiB'],
  ])('%s -> %s', (input, expected) => expect(formatBytes(input)).toBe(expected));
});

describe('formatDuration', () => {
  test.each([
    [null, '—'], [0, '0s'], [7.9, '7s'], [75, '1m 15s'], [3600, '1h'], [3725, '1h 2m'], [90061, '1d 1h'], [-5, '0s'],
  ])('%s -> %s', (input, expected) => expect(formatDuration(input)).toBe(expected));
});

describe('formatLastExit', () => {
  test.each([
    [null, '—'],
    [{ code: 1, signal: null, reason: 'crash' }, 'crash, code 1'],
    [{ code: null, signal: 'SIGKILL', reason: 'freeze' }, 'freeze, SIGKILL'],
    [{ code: 0, signal: null, reason: 'stop' }, 'stop, code 0'],
    [{ code: null, signal: null, reason: null }, '—'],
  ])('%j -> %s', (input, expected) => expect(formatLastExit(input)).toBe(expected));
});

test('formatPrice shows four decimals', () => {
  expect(formatPrice(102.738546844542)).toBe('102.7385');
  expect(formatPrice(100)).toBe('100.0000');
  expect(formatPrice(null)).toBe('—');
});

test('formatMoney signs the amount', () => {
  expect(formatMoney(12.345)).toBe('+12.35');
  expect(formatMoney(-3)).toBe('−3.00');
  expect(formatMoney(0)).toBe('0.00');
  expect(formatMoney(undefined)).toBe('—');
});

test('every SPEC state and health has a tone', () => {
  const states = ['disabled', 'pending', 'building', 'starting', 'running', 'stopping', 'stopped', 'exited', 'backoff', 'fatal'];
  expect(states.map(stateTone)).toEqual(['muted', 'info', 'info', 'info', 'good', 'warn', 'muted', 'muted', 'warn', 'bad']);
  expect(['unknown', 'healthy', 'unhealthy', 'frozen'].map(healthTone)).toEqual(['muted', 'good', 'bad', 'warn']);
});
