import { useEffect, useRef } from 'react';
import 'uplot/dist/uPlot.min.css';

// A uPlot chart. uPlot is loaded on first use (it reads matchMedia when imported, which jsdom
// has not), created once per `opts` and fed new `data` with setData: no re-creation per sample.
export default function UChart({ data, makeOpts, width, height, label, testId }) {
  const box = useRef(null);
  const plot = useRef(null);
  const latest = useRef(data);
  latest.current = data;

  useEffect(() => {
    let dead = false;
    import('uplot').then(({ default: UPlot }) => {
      if (dead || !box.current) return;
      plot.current = new UPlot({ ...makeOpts(), width, height }, latest.current, box.current);
    }).catch(() => {}); // no canvas (a test's DOM): the label still says what it shows
    return () => {
      dead = true;
      if (plot.current) plot.current.destroy();
      plot.current = null;
    };
  }, [makeOpts, width, height]);

  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);

  const points = data && data[0] ? data[0].length : 0;
  return <div ref={box} className="uchart" role="img" aria-label={label} data-testid={testId} data-points={points} />;
}
