'use strict';
// Entry point: `node src/index.js`.
const { loadConfig } = require('./config');
const { startServer, log } = require('./server');

async function main() {
  const config = loadConfig();
  const running = await startServer(config);
  const addr = running.address;
  log({
    msg: 'listening',
    ...(config.listenFd !== null ? { fd: config.listenFd } : {}),
    host: typeof addr === 'object' && addr ? addr.address : config.host,
    port: typeof addr === 'object' && addr ? addr.port : config.port,
    backend: config.backendUrl,
    supervisor: config.supervisorUrl,
    heartbeat: Boolean(config.heartbeat),
  });

  let stopping = false;
  const shutdown = (signal) => {
    if (stopping) return;
    stopping = true;
    log({ msg: 'stopping', signal });
    // A hard stop in case something holds the loop; the supervisor would SIGKILL anyway.
    setTimeout(() => process.exit(0), config.shutdownGraceMs + 1000).unref();
    running.close().then(() => {
      log({ msg: 'stopped' });
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: err.message })}\n`);
  process.exit(1);
});
