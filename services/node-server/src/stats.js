'use strict';
// Gateway counters, served at GET /gateway/stats.

function createStats(now = Date.now) {
  const startedAt = now();
  const counters = {
    requests: 0,
    in_flight: 0,
    by_status: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    rate_limited: 0,
    body_too_large: 0,
    upstream_errors: 0,
    proxied: { backend: 0, supervisor: 0 },
    bus: { answered: 0, failed: 0, stale: 0 }, // the trade summary over NATS (bus-summary.js)
  };

  // Counts a request when its response ends: `finish` for a complete answer, `close` for a
  // stream (an SSE client going away) that never finishes.
  function middleware(req, res, next) {
    counters.requests += 1;
    counters.in_flight += 1;
    let counted = false;
    const done = () => {
      if (counted) return;
      counted = true;
      counters.in_flight -= 1;
      const cls = `${Math.floor(res.statusCode / 100)}xx`;
      if (cls in counters.by_status) counters.by_status[cls] += 1;
    };
    res.once('finish', done);
    res.once('close', done);
    next();
  }

  function snapshot() {
    return {
      ...counters,
      by_status: { ...counters.by_status },
      proxied: { ...counters.proxied },
      bus: { ...counters.bus },
      started_at: new Date(startedAt).toISOString(),
      uptime_seconds: Math.round((now() - startedAt) / 10) / 100,
    };
  }

  return { counters, middleware, snapshot };
}

module.exports = { createStats };
