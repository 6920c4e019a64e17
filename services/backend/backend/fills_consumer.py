"""Fills from the bus into the ledger: a durable pull consumer on the FILLS stream.

At least once, made exactly once by the ledger: a batch is committed to SQLite in one
transaction, and only then acked; a kill -9 between the commit and the ack redelivers the
batch after ``ACK_WAIT``, and ``fill_id`` (UNIQUE) turns the repeats into no-ops. A message
that is not a valid fill is terminated (never redelivered) and logged, so one bad message
cannot block the stream.

The consumer has a thread, an event loop and a NATS connection of its own (``start()``,
``stop()``): on uvicorn's loop, every request and heartbeat delayed the fills behind it
(the consume stage's p99 was 71 ms at 1,000 fills/s, bench/RESULTS.md). Nothing else runs on
its loop, so it commits each batch right there, with no hop to a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import BaseModel, ValidationError

from . import bus
from .trades import TradeStore

log = logging.getLogger("backend.fills")

DURABLE = "backend-ledger"
BATCH = 256
FETCH_WAIT = 1.0      # seconds a fetch waits for a first message
ACK_WAIT = 5.0        # seconds before an unacked fill is redelivered (a killed backend's batch)
RETRY_WAIT = 0.5      # after a bus error (broker restarting, leader election)


class FillsConsumer:
    """``start()`` its thread, ``stop()`` it; ``committed`` counts fills this process stored."""

    def __init__(self, url: str, store: TradeStore, parse: Callable[[bytes], BaseModel]):
        self.url = url
        self.store = store
        self.parse = parse  # the HTTP route's FillIn model: one schema for both ways in
        self.stopping = asyncio.Event()
        self.committed = 0
        self.rejected = 0
        self.nc: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._main: asyncio.Task[None] | None = None
        self._fetching = False

    # -- from other threads ---------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._thread_main, args=(self._loop,), name="fills",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming and wait for the thread (a batch being committed is finished)."""
        if self._loop is None or self._thread is None:
            return  # never started
        try:
            self._loop.call_soon_threadsafe(self._stop_here)
        except RuntimeError:
            pass  # the loop has closed: the thread is over
        self._thread.join(timeout)

    # -- on the consumer's own loop --------------------------------------------------------
    def _thread_main(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        self._main = loop.create_task(self.run(), name="fills")
        try:
            loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass  # stopped while waiting on a fetch
        finally:
            loop.close()

    def _stop_here(self) -> None:
        self.stopping.set()
        # A fetch may wait FETCH_WAIT for a first message: end it now. Only a fetch is
        # cancelled, never a commit; acks cut short would only mean a redelivery.
        if self._fetching and self._main is not None:
            self._main.cancel()

    async def run(self) -> None:
        try:
            self.nc = await bus.connect(self.url, "backend", self.stopping)
        except asyncio.CancelledError:
            return
        js = self.nc.jetstream()
        config = ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, ack_wait=ACK_WAIT,
                                max_ack_pending=10 * BATCH)
        try:
            while not self.stopping.is_set():
                try:
                    await bus.ensure_stream(js, bus.FILLS)
                    sub = await js.pull_subscribe("fills.>", durable=DURABLE, stream=bus.FILLS.name,
                                                  config=config)
                except (TimeoutError, NatsError) as exc:
                    log.warning("bus: no FILLS consumer yet (%r); retrying", exc)
                    await self._pause()
                    continue
                log.info("consuming FILLS as durable %s", DURABLE)
                try:
                    await self._consume(sub)
                except Exception:   # a bug must not end consumption silently: say it, go on
                    log.exception("bus: the FILLS consumer failed; re-subscribing")
                    await self._pause()
                await _quietly(sub.unsubscribe())
        finally:
            await _quietly(self.nc.close())

    async def _pause(self) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), RETRY_WAIT)
        except TimeoutError:
            pass

    async def _consume(self, sub: Any) -> None:
        """Fetch, commit, ack, until stopped; returns on a bus error to re-subscribe."""
        while not self.stopping.is_set():
            self._fetching = True
            try:
                msgs = await sub.fetch(BATCH, timeout=FETCH_WAIT)
            except TimeoutError:
                continue  # nothing to consume
            except NatsError as exc:
                log.warning("bus: fetch failed (%r); re-subscribing", exc)
                await self._pause()
                return
            finally:
                self._fetching = False
            await self._handle(msgs)

    async def _handle(self, msgs: list[Msg]) -> None:
        fills: list[dict[str, Any]] = []
        good: list[Msg] = []
        for msg in msgs:
            try:
                fills.append(self.parse(msg.data).model_dump())
                good.append(msg)
            except (ValidationError, ValueError) as exc:
                self.rejected += 1
                log.error("bus: dropped a message on %s that is no fill: %s", msg.subject,
                          str(exc).splitlines()[0][:200])
                await _quietly(msg.term())
        if fills:
            # The commit before any ack: an ack for an uncommitted fill could lose it. Inline:
            # this loop is the consumer's alone, and the commit takes well under a millisecond
            # with the WAL checkpoints on their own thread (walcheckpoint.py).
            try:
                self.committed += self.store.record_many(fills)
            except sqlite3.Error as exc:
                log.error("ledger: %d fills not stored (%s); the bus redelivers them", len(fills), exc)
                return
        for msg in good:
            await _quietly(msg.ack())  # a lost ack means a redelivery, which the key absorbs


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except (TimeoutError, NatsError) as exc:
        log.debug("bus: %r", exc)
