import { useCallback, useMemo } from 'react';
import UChart from './UChart.jsx';
import { formatBytes } from '../format.js';

// The larger chart of an opened service: CPU (left axis), memory (right axis) and restarts
// (steps, on their own hidden scale) over time.
export default function ServiceChart({ name, samples }) {
  const data = useMemo(() => [
    samples.map((s) => s.t), samples.map((s) => s.cpu), samples.map((s) => s.rss),
    samples.map((s) => s.restarts),
  ], [samples]);
  const makeOpts = useCallback(() => ({
    scales: { x: { time: true }, cpu: { range: (u, lo, hi) => [0, Math.max(5, hi ?? 0)] }, rss: {}, r: {} },
    axes: [
      {},
      { scale: 'cpu', label: 'CPU %', size: 50 },
      { scale: 'rss', side: 1, label: 'memory', size: 70, values: (u, vals) => vals.map((v) => formatBytes(v)), grid: { show: false } },
    ],
    series: [
      {},
      { label: 'CPU %', scale: 'cpu', stroke: '#1f6feb', width: 1.5, value: (u, v) => (v == null ? '—' : `${v.toFixed(1)}%`) },
      { label: 'memory', scale: 'rss', stroke: '#8250df', width: 1.5, value: (u, v) => formatBytes(v) },
      { label: 'restarts', scale: 'r', stroke: '#cf222e', width: 2, paths: undefined, points: { show: true, size: 4 } },
    ],
  }), []);
  const last = samples[samples.length - 1];
  return (
    <figure className="chart">
      <UChart data={data} makeOpts={makeOpts} width={760} height={220}
        label={`CPU, memory and restarts of ${name} over time`} testId="service-chart" />
      <figcaption className="muted" data-testid="chart-restarts">
        {samples.length} samples; restarts {last && last.restarts != null ? last.restarts : '—'}
      </figcaption>
    </figure>
  );
}
