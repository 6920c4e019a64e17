"""The backend's bus thread: one asyncio loop that owns the NATS connection, the task queue
(taskbus.py) and the request/reply responders.

Only this thread touches the bus state. HTTP handlers (uvicorn's thread pool) run a
coroutine here with ``call`` and wait for its answer; the uvicorn loop is never blocked by
the broker, so a silent broker cannot stop the heartbeats.

Request/reply: ``backend.trades.summary`` is answered in queue group ``backend``, so
several backends share the requests and a gateway asks whichever is up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from . import bus
from .taskbus import BusTasks

log = logging.getLogger("backend.bus")
T = TypeVar("T")

SUMMARY_SUBJECT = "backend.trades.summary"
QUEUE_GROUP = "backend"
SETUP_RETRY = 1.0  # seconds between attempts to create the task streams


class BusThread(threading.Thread):
    def __init__(self, url: str, summary: Callable[[], dict[str, Any]],
                 tasks: BusTasks | None) -> None:
        super().__init__(name="bus", daemon=True)
        self.url = url
        self.summary = summary
        self.tasks = tasks
        self.loop = asyncio.new_event_loop()
        self.connected = threading.Event()  # set once streams and responders are up
        self._stopping: asyncio.Event | None = None
        self._nc: NATS | None = None

    # -- from other threads -------------------------------------------------------------
    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the bus loop and return its result (raises its error)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self.is_alive() and self._stopping is not None:
            self.loop.call_soon_threadsafe(self._stopping.set)
        self.join(timeout)

    # -- on the bus loop -----------------------------------------------------------------
    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        nc = await self._connect()
        if nc is None:
            return
        self._nc = nc
        worker: asyncio.Task[None] | None = None
        try:
            await nc.subscribe(SUMMARY_SUBJECT, queue=QUEUE_GROUP, cb=self._on_summary)
            if self.tasks is not None:
                if not await self._setup_tasks(nc):
                    return
                worker = asyncio.create_task(self.tasks.run(self._stopping))
            self.connected.set()
            log.info("bus connected to %s (tasks on the bus: %s)", self.url, self.tasks is not None)
            await self._stopping.wait()
        finally:
            if worker is not None:
                await worker
            await nc.drain()

    async def _connect(self) -> NATS | None:
        assert self._stopping is not None
        try:
            # bus.py's connect: retries the first connect, then reconnects for ever (the
            # supervisor restarts the broker); a cluster's URLs are comma-separated.
            return await bus.connect(self.url, "backend-tasks", stop=self._stopping)
        except asyncio.CancelledError:
            return None

    async def _setup_tasks(self, nc: NATS) -> bool:
        """Streams and consumers, retried until they exist (JetStream may still be starting,
        or the broker restarting); False if told to stop first."""
        assert self._stopping is not None and self.tasks is not None
        while not self._stopping.is_set():
            try:
                await self.tasks.setup(nc)
                return True
            except Exception as exc:  # noqa: BLE001 - never give up while we run
                log.warning("task streams not set up yet: %s", exc)
                try:
                    await asyncio.wait_for(self._stopping.wait(), SETUP_RETRY)
                except TimeoutError:
                    pass
        return False

    async def _on_summary(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            # SQLite under its own lock; quick enough to answer inline.
            body: dict[str, Any] = self.summary()
        except Exception as exc:  # noqa: BLE001 - answer with the error, never crash
            body = {"error": f"{type(exc).__name__}: {exc}"}
        await msg.respond(json.dumps(body).encode())
