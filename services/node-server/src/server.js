'use strict';
// Listening (on a port, or on the socket the supervisor passed as fd 3) and shutting down.
const http = require('node:http');
const { createApp } = require('./app');
const { startHeartbeat } = require('./heartbeat');
const { createBus } = require('./bus');

function log(fields) {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...fields })}\n`);
}

// Resolves once listening; returns { server, stats, address, close }.
function startServer(config) {
  const bus = config.natsUrl ? createBus({ url: config.natsUrl, token: config.natsToken, log }) : null;
  const { app, stats } = createApp(config, { bus });
  const server = http.createServer(app);
  let stopHeartbeat = () => {};

  const listening = new Promise((resolve, reject) => {
    server.once('error', reject);
    const onListening = () => {
      server.off('error', reject);
      resolve();
    };
    if (config.listenFd !== null) server.listen({ fd: config.listenFd }, onListening);
    else server.listen(config.port, config.host, onListening);
  });

  async function close(graceMs = config.shutdownGraceMs) {
    stopHeartbeat();
    const closed = new Promise((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Long requests (event streams) get a short grace, then are cut.
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    cut.unref();
    await closed;
    clearTimeout(cut);
    if (bus) await bus.close();
  }

  return listening.then(() => {
    if (config.heartbeat) stopHeartbeat = startHeartbeat(config.heartbeat);
    return { server, stats, bus, address: server.address(), close };
  });
}

module.exports = { startServer, log };
