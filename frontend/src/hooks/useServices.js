import { useCallback, useEffect, useRef, useState } from 'react';
import { fetchServices, readEventStream } from '../api.js';

export const CHANGE_EVENTS = ['state', 'restart', 'freeze', 'probe', 'reload'];
export const POLL_MS = 5000;
export const RETRY_MS = 1000;
const RETRY_MAX_MS = 10000;

// The live service list, read with the operator's key (`apiKey`; nothing is asked without
// one). The supervisor's event stream first sends
//   event: snapshot / data: {"services": [...]}
// and then change events (state, restart, freeze, probe, reload) carrying
//   data: {"type", "service", "at", ...}.
// A change event triggers a refetch of /supervisor/api/services: simple and always right.
// Refetches are coalesced (one in flight, at most one queued), and while the stream is down
// the list is polled every `pollMs` and the stream retried after `retryMs` (doubling to 10 s).
// A 401 from either is reported as `error` (status 401) and stops the stream.
// `onEvent(type, data)` sees every parsed event, the snapshot included (the timeline and the
// charts listen there); `snapshots` counts snapshots, so panels refetch after a reconnect.
export default function useServices({ apiKey = '', pollMs = POLL_MS, retryMs = RETRY_MS, onEvent: listener } = {}) {
  const [services, setServices] = useState(null);
  const [snapshots, setSnapshots] = useState(0);
  const listenerRef = useRef(listener);
  listenerRef.current = listener;
  const [error, setError] = useState(null);
  const [live, setLive] = useState(false);
  const liveRef = useRef(false);
  const keyRef = useRef(apiKey);
  keyRef.current = apiKey;
  const inFlight = useRef(false);
  const queued = useRef(false);
  const mounted = useRef(true);
  // Bumped by every snapshot: a fetch that started before a snapshot arrived carries older
  // news than the snapshot and must not overwrite it.
  const snapshotSeq = useRef(0);

  const refetch = useCallback(async () => {
    if (!keyRef.current) return;
    if (inFlight.current) {
      queued.current = true;
      return;
    }
    inFlight.current = true;
    try {
      do {
        queued.current = false;
        const seq = snapshotSeq.current;
        try {
          const list = await fetchServices(keyRef.current);
          if (mounted.current && seq === snapshotSeq.current) {
            setServices(list);
            setError(null);
          }
        } catch (err) {
          if (mounted.current) setError(err);
        }
      } while (queued.current && mounted.current);
    } finally {
      inFlight.current = false;
    }
  }, []);

  useEffect(() => {
    mounted.current = true;
    const setLiveBoth = (value) => {
      liveRef.current = value;
      setLive(value);
    };
    setLiveBoth(false);
    setError(null);
    if (!apiKey) {
      setServices(null);
      return () => { mounted.current = false; };
    }
    const applySnapshot = (list) => {
      snapshotSeq.current += 1;
      setSnapshots((n) => n + 1);
      setServices(list);
      setError(null);
    };
    const onEvent = (type, text) => {
      let data = null;
      try {
        data = JSON.parse(text);
      } catch {
        refetch();
        return;
      }
      if (listenerRef.current) {
        try {
          listenerRef.current(type, data);
        } catch {
          // a panel's bug must not stop the stream
        }
      }
      if (type === 'sample') return; // figures only: no refetch of the list
      if (type === 'snapshot' || (type === 'message' && data && Array.isArray(data.services))) {
        setLiveBoth(true);
        applySnapshot(Array.isArray(data) ? data : data.services || []);
      } else if (type === 'message' || CHANGE_EVENTS.includes(type)) {
        refetch();
      }
    };

    const abort = new AbortController();
    let stopped = false;
    let wake = null;
    const pause = (ms) => new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => { clearTimeout(timer); resolve(); };
    });
    (async () => {
      let delay = retryMs;
      while (!stopped) {
        try {
          await readEventStream(apiKey, {
            signal: abort.signal,
            onOpen: () => { setLiveBoth(true); delay = retryMs; },
            onEvent,
          });
        } catch (err) {
          if (stopped) return;
          if (err && err.status === 401) {
            setLiveBoth(false);
            if (mounted.current) setError(err);
            return; // a refused key is not retried: the operator must enter it again
          }
        }
        if (stopped) return;
        setLiveBoth(false); // until the stream is back, the poll below takes over
        await pause(delay);
        delay = Math.min(RETRY_MAX_MS, delay * 2);
      }
    })();

    refetch();
    const timer = setInterval(() => {
      if (!liveRef.current) refetch();
    }, pollMs);

    return () => {
      mounted.current = false;
      stopped = true;
      abort.abort();
      if (wake) wake();
      clearInterval(timer);
    };
  }, [refetch, pollMs, retryMs, apiKey]);

  return { services, error, live, refetch, snapshots };
}
