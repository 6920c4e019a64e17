'use strict';
// Heartbeats to the supervisor: POST UNIFIED_HEARTBEAT_URL with X-Unified-Token. They come
// from a timer on the event loop on purpose: a blocked loop stops them, and that is what the
// supervisor's freeze detection is meant to see. Failures are swallowed; the next tick retries.

function startHeartbeat({ url, token, intervalMs, fetchImpl = globalThis.fetch }) {
  let inFlight = false;
  let stopped = false;

  async function beat() {
    if (inFlight || stopped) return; // never pile up requests behind a slow supervisor
    inFlight = true;
    try {
      const res = await fetchImpl(url, {
        method: 'POST',
        headers: { 'X-Unified-Token': token },
        signal: AbortSignal.timeout(Math.max(intervalMs, 1000)),
      });
      await res.arrayBuffer().catch(() => {});
    } catch {
      // swallowed: the supervisor may be restarting
    } finally {
      inFlight = false;
    }
  }

  beat();
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  return function stop() {
    stopped = true;
    clearInterval(timer);
  };
}

module.exports = { startHeartbeat };
