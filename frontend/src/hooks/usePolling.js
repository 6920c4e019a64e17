import { useEffect, useRef, useState } from 'react';

// Calls `load` now and every `intervalMs` while `enabled`; keeps the last good data and the
// last error. `key` restarts the cycle (e.g. another service selected). A slow answer never
// overlaps the next call: the next one is scheduled when the current one settles.
export default function usePolling(load, intervalMs, { enabled = true, key = '' } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    if (!enabled) return undefined;
    let cancelled = false;
    let timer;
    setState({ data: null, error: null, loading: true });
    const tick = async () => {
      try {
        const data = await loadRef.current();
        if (!cancelled) setState({ data, error: null, loading: false });
      } catch (error) {
        if (!cancelled) setState((prev) => ({ data: prev.data, error, loading: false }));
      }
      if (!cancelled) timer = setTimeout(tick, intervalMs);
    };
    tick();
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [intervalMs, enabled, key]);

  return state;
}
