import { useCallback } from 'react';
import UChart from './UChart.jsx';

const COLORS = { cpu: '#1f6feb', rss: '#8250df', restarts: '#cf222e' };

// A tiny line with no axes: the trend of one figure of one service.
export default function Sparkline({ data, field, label, testId }) {
  const makeOpts = useCallback(() => ({
    legend: { show: false },
    cursor: { show: false },
    select: { show: false },
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [Math.min(0, lo ?? 0), Math.max(hi ?? 1, field === 'cpu' ? 5 : 1)] } },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: COLORS[field], width: 1.5, fill: `${COLORS[field]}22`, points: { show: false },
      paths: undefined }],
  }), [field]);
  return <UChart data={data} makeOpts={makeOpts} width={80} height={22} label={label} testId={testId} />;
}
