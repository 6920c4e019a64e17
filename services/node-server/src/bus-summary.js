'use strict';
// GET /api/trades/summary answered by a NATS request to the Python backend (subject
// backend.trades.summary, queue group "backend"), with the design's recovery levels:
//   level 1: a timeout (or no responder) gets one quick retry after RETRY_MS;
//   level 3: if that fails too, the last good answer, marked stale (X-Stale-Age header,
//            `stale: true` and `stale_age_seconds` in the body);
//   only with nothing cached: 504.
const SUBJECT = 'backend.trades.summary';
const RETRY_MS = 100;

function summaryRoute({ bus, timeoutMs, retryMs = RETRY_MS, stats, now = Date.now }) {
  let lastGood = null; // { body, at }

  async function ask() {
    const reply = await bus.request(SUBJECT, new Uint8Array(0), timeoutMs);
    const body = JSON.parse(Buffer.from(reply.data).toString('utf8'));
    if (!body || typeof body !== 'object' || Array.isArray(body) || 'error' in body) {
      throw new Error(`the backend answered with an error: ${JSON.stringify(body).slice(0, 200)}`);
    }
    return body;
  }

  return async function tradeSummary(req, res) {
    let failure;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      if (attempt === 1) await new Promise((r) => setTimeout(r, retryMs));
      try {
        const body = await ask();
        lastGood = { body, at: now() };
        if (stats) stats.counters.bus.answered += 1;
        res.set('X-Served-Via', 'nats');
        return res.json(body);
      } catch (err) {
        failure = err;
      }
    }
    if (stats) stats.counters.bus.failed += 1;
    if (lastGood) {
      if (stats) stats.counters.bus.stale += 1;
      const age = Math.max(0, Math.round((now() - lastGood.at) / 100) / 10);
      res.set('X-Stale-Age', String(age));
      res.set('X-Served-Via', 'cache');
      return res.json({ ...lastGood.body, stale: true, stale_age_seconds: age });
    }
    return res.status(504).json({
      error: 'gateway_timeout',
      upstream: 'backend',
      via: 'nats',
      detail: `no answer on ${SUBJECT} after a retry, and no earlier answer to serve: ${failure && (failure.code || failure.message)}`,
      request_id: req.id,
    });
  };
}

module.exports = { summaryRoute, SUBJECT, RETRY_MS };
