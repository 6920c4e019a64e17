import { expect, test } from 'vitest';
import { layout } from './graph.js';
import { describe, matches, push } from './timeline.js';
import { addSample, fromHistory, toSample } from './samples.js';
import { lineFilter } from './logs.js';

test('the graph is laid out by dagre: dependents right of their dependency, edges labelled', () => {
  const g = layout([
    { name: 'db', state: 'running', depends_on: [] },
    { name: 'api', state: 'backoff', depends_on: ['db'], dependencies: { db: { condition: 'healthy', restart: true } } },
    { name: 'web', state: 'fatal', depends_on: ['api', 'ghost'] },
  ]);
  const at = Object.fromEntries(g.nodes.map((n) => [n.name, n]));
  expect(at.api.x).toBeGreaterThan(at.db.x);
  expect(at.web.x).toBeGreaterThan(at.api.x);
  expect(g.edges.map((e) => [e.from, e.to, e.label])).toEqual(
    expect.arrayContaining([['db', 'api', 'healthy, restart'], ['api', 'web', '']]));
  expect(g.edges).toHaveLength(2); // an unknown dependency draws nothing
});

test('events become timeline rows; unknown types and garbage are dropped', () => {
  expect(describe('restart', { service: 'bot', at: 5, reason: 'crash' })).toMatchObject({ kind: 'restart', text: 'restart: crash', tone: 'warn' });
  expect(describe('freeze', { service: 'bot', kind: 'hard' }).tone).toBe('bad');
  expect(describe('state', { service: 'bot', state: 'running' }).text).toBe('→ running');
  expect(describe('sample', { service: 'bot' })).toBeNull();
  expect(describe('state', null)).toBeNull();
  expect(describe('__proto__', {})).toBeNull();
  let rows = [];
  for (let i = 0; i < 5; i += 1) rows = push(rows, describe('restart', { service: `s${i}`, at: i }), i, 3);
  expect(rows.map((r) => r.service)).toEqual(['s4', 's3', 's2']);
  expect(matches(rows[0], 'S4')).toBe(true);
  expect(matches(rows[0], 'freeze')).toBe(false);
});

test('samples are kept in time order, one per second, bounded', () => {
  let list = [];
  for (let t = 0; t < 10; t += 1) list = addSample(list, toSample({ at: t, cpu_percent: t, restarts: 0 }), 4);
  expect(list.map((s) => s.t)).toEqual([6, 7, 8, 9]);
  list = addSample(list, toSample({ at: 9.5, cpu_percent: 99 }), 4);
  expect(list[list.length - 1].cpu).toBe(99);
  expect(fromHistory({ service: 'x', t: [1, 2], cpu_percent: [0.5, null], memory_rss_bytes: [10, 20], restarts: [0, 1] }))
    .toEqual([{ t: 1, cpu: 0.5, rss: 10, restarts: 0 }, { t: 2, cpu: null, rss: 20, restarts: 1 }]);
  expect(fromHistory({ t: 'nope' })).toEqual([]);
  expect(fromHistory({ samples: [{ at: 1, rss_bytes: 10 }, { nope: 1 }] })).toEqual([{ t: 1, cpu: null, rss: 10, restarts: null }]);
});

test('the log filter takes text or /regex/, and a bad expression filters nothing', () => {
  expect(lineFilter('ERR').test('an error here')).toBe(true);
  expect(lineFilter('/^a+$/').test('AAA')).toBe(true);
  const bad = lineFilter('/(/');
  expect(bad.error).toBeTruthy();
  expect(bad.test('anything')).toBe(true);
});
