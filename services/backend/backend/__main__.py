"""``python -m backend [--host H] [--port P]``: serve the backend under uvicorn.

Speaks the supervisor's child protocols: ``READY=1`` once the socket is listening,
``WATCHDOG=1`` from the event loop (so a blocked loop stops the heartbeats), and an
inherited listening socket (``LISTEN_FDS``, fd 3) instead of binding its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from dataclasses import replace

import uvicorn

from unified_system.child import notify

from .app import create_app
from .drain import Drain
from .settings import from_env

log = logging.getLogger("backend")
DEFAULT_HEARTBEAT = 2.0  # seconds, when the supervisor sets no WATCHDOG_USEC


class QuietHealthChecks(logging.Filter):
    """Drop access-log lines of ``GET /health``: the supervisor's probes ask several times a
    second and would drown every other line of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) >= 3 and args[2] == "/health")


# The drain deadline (drain.py): how long open keep-alive connections get to send their next
# request, answered with `Connection: close`. uvicorn's own keep-alive timeout is 5 s.
SHUTDOWN_DRAIN = float(os.environ.get("SHUTDOWN_DRAIN_SECONDS", "5"))


class NotifyingServer(uvicorn.Server):
    """uvicorn.Server that reports readiness after binding, heartbeats from its loop, and
    drains its connections on SIGTERM (drain.py)."""

    _heartbeats: asyncio.Task[None] | None = None

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit or not self.started:
            return
        # uvicorn's lifespan startup runs *before* it binds, so READY belongs here.
        notify.ready("listening")
        self._heartbeats = asyncio.create_task(self._heartbeat_loop())

    async def _heartbeat_loop(self) -> None:
        interval = notify.watchdog_interval() or DEFAULT_HEARTBEAT
        while True:
            notify.heartbeat()
            await asyncio.sleep(interval)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        notify.stopping()
        if self._heartbeats:
            self._heartbeats.cancel()
        # Stop accepting, and close each open connection after its next answer, before
        # uvicorn closes what is left: its own shutdown closes idle keep-alive connections
        # at once, and a client sending on one at that moment gets a read error.
        await self.drain.run(self.servers, self.server_state.connections, SHUTDOWN_DRAIN)
        await super().shutdown(sockets=sockets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    parser.add_argument("--host", help="bind address (default $HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default $PYTHON_PORT or 8000)")
    args = parser.parse_args(argv)
    try:
        settings = from_env()
    except ValueError as exc:
        print(f"backend: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.host:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        settings = replace(settings, port=args.port)

    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    drain = Drain()
    config = uvicorn.Config(drain.wrap(create_app(settings)), host=settings.host, port=settings.port,
                            log_level=settings.log_level, timeout_graceful_shutdown=5)
    logging.getLogger("uvicorn.access").addFilter(QuietHealthChecks())
    server = NotifyingServer(config, drain)
    inherited = notify.listen_sockets()
    if inherited:
        # Socket activation: the supervisor holds the port across our restarts.
        log.info("serving on inherited sockets %s", [s.getsockname() for s in inherited])
    else:
        log.info("binding %s:%s, data in %s, ai_enabled=%s",
                 settings.host, settings.port, settings.data_dir, settings.ai_enabled)
    # uvicorn re-raises the signal it caught once it has shut down; with these handlers
    # in place that re-raise is a no-op, so a graceful stop exits 0 (not -SIGTERM or a
    # KeyboardInterrupt traceback).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    server.run(sockets=inherited or None)
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
