import { useCallback, useEffect, useRef, useState } from 'react';
import { EVENTS_URL, fetchServices } from '../api.js';

export const CHANGE_EVENTS = ['state', 'restart', 'freeze', 'probe', 'reload'];
export const POLL_MS = 5000;

// The live service list. The supervisor's event stream first sends
//   event: snapshot / data: {"services": [...]}
// and then change events (state, restart, freeze, probe, reload) carrying
//   data: {"type", "service", "at", ...}.
// A change event triggers a refetch of /supervisor/api/services: simple and always right.
// Refetches are coalesced (one in flight, at most one queued), and while the stream is down
// the list is polled every `pollMs` (POLL_MS).
export default function useServices({ pollMs = POLL_MS } = {}) {
  const [services, setServices] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(false);
  const liveRef = useRef(false);
  const inFlight = useRef(false);
  const queued = useRef(false);
  const mounted = useRef(true);
  // Bumped by every snapshot: a fetch that started before a snapshot arrived carries older
  // news than the snapshot and must not overwrite it.
  const snapshotSeq = useRef(0);

  const refetch = useCallback(async () => {
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
          const list = await fetchServices();
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
    const applySnapshot = (list) => {
      snapshotSeq.current += 1;
      setServices(list);
      setError(null);
    };

    let source = null;
    if (typeof EventSource !== 'undefined') {
      source = new EventSource(EVENTS_URL);
      source.onopen = () => setLiveBoth(true);
      // EventSource reconnects by itself; until it does, the poll below takes over.
      source.onerror = () => setLiveBoth(false);
      source.addEventListener('snapshot', (event) => {
        setLiveBoth(true);
        try {
          const data = JSON.parse(event.data);
          applySnapshot(Array.isArray(data) ? data : data.services || []);
        } catch {
          refetch();
        }
      });
      for (const type of CHANGE_EVENTS) source.addEventListener(type, () => refetch());
      // An unnamed event: a snapshot if it carries services, otherwise a change.
      source.onmessage = (event) => {
        try {
          const data = JSON.parse(event.data);
          if (data && Array.isArray(data.services)) {
            applySnapshot(data.services);
            return;
          }
        } catch {
          // fall through to a refetch
        }
        refetch();
      };
    }

    refetch();
    const timer = setInterval(() => {
      if (!liveRef.current) refetch();
    }, pollMs);

    return () => {
      mounted.current = false;
      clearInterval(timer);
      if (source) source.close();
    };
  }, [refetch, pollMs]);

  return { services, error, live, refetch };
}
