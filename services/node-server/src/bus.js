'use strict';
// The gateway's connection to the NATS broker (NATS_URL). It connects in the background and
// reconnects forever: the supervisor restarts the broker, and the gateway must serve HTTP
// (and its stale answers) meanwhile. Without NATS_URL there is no bus and the routes that
// would use it fall back to the plain HTTP proxy.

const RETRY_MS = 500;

function createBus({ url, token = null, name = 'node-server', log = () => {} }) {
  // Loaded here, not at the top: a gateway without NATS_URL never pays for the client.
  // eslint-disable-next-line global-require
  const { connect } = require('nats');
  let nc = null;
  let closed = false;
  const waiting = new Set(); // callbacks run once connected (subscriptions of the live view)

  async function loop() {
    while (!closed && nc === null) {
      try {
        const conn = await connect({
          servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: RETRY_MS, timeout: 2000,
          ...(token ? { token } : {}), // NATS_TOKEN: the broker refuses a client without it
        });
        if (closed) {
          await conn.close();
          return;
        }
        nc = conn;
        log({ msg: 'bus connected', url });
        for (const cb of waiting) cb(nc);
        conn.closed().then(() => { if (!closed) log({ msg: 'bus closed' }); });
      } catch (err) {
        // Not up yet: the broker starts first under the supervisor, but may be restarting.
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
      }
    }
  }
  loop();

  return {
    get connection() { return nc; },
    // Runs `cb(nc)` now if connected, else once connected.
    onConnect(cb) {
      if (nc) cb(nc);
      else waiting.add(cb);
    },
    async request(subject, data, timeoutMs) {
      if (!nc || nc.isClosed()) {
        const err = new Error('not connected to the bus');
        err.code = 'NOT_CONNECTED';
        throw err;
      }
      return nc.request(subject, data, { timeout: timeoutMs });
    },
    async close() {
      closed = true;
      waiting.clear();
      if (nc) await nc.close().catch(() => {});
    },
  };
}

module.exports = { createBus };
