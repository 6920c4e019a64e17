"""Fills from the bus into the ledger: a durable pull consumer on the FILLS stream.

At least once, made exactly once by the ledger: a batch is committed to SQLite in one
transaction, and only then acked; a kill -9 between the commit and the ack redelivers the
batch after ``ACK_WAIT``, and ``fill_id`` (UNIQUE) turns the repeats into no-ops. A message
that is not a valid fill is terminated (never redelivered) and logged, so one bad message
cannot block the stream.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
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
    """``run()`` until ``stop()``; ``committed`` counts fills this process stored."""

    def __init__(self, url: str, store: TradeStore, parse: Callable[[bytes], BaseModel]):
        self.url = url
        self.store = store
        self.parse = parse  # the HTTP route's FillIn model: one schema for both ways in
        self.stopping = asyncio.Event()
        self.committed = 0
        self.rejected = 0
        self.nc: Client | None = None

    def stop(self) -> None:
        self.stopping.set()

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
            try:
                msgs = await sub.fetch(BATCH, timeout=FETCH_WAIT)
            except TimeoutError:
                continue  # nothing to consume
            except NatsError as exc:
                log.warning("bus: fetch failed (%r); re-subscribing", exc)
                await self._pause()
                return
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
            # The commit before any ack: an ack for an uncommitted fill could lose it.
            try:
                self.committed += await asyncio.to_thread(self.store.record_many, fills)
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
