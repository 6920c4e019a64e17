"""Delivers fills from the state's outbox to the bus (the FILLS stream), at least once.

The same rule as the HTTP deliverer (delivery.py): a fill enters the outbox and is
checkpointed before it is published, and leaves the outbox only once JetStream has acked
it, so a kill -9 anywhere re-publishes it after the restart. The broker drops a re-publish
inside its dedupe window (``Nats-Msg-Id`` = fill id) and the backend's ledger is keyed on
the fill id, so a repeat is harmless at either end.

The thread runs its own asyncio loop (nats-py is asyncio); the trading loop only pokes
``wake``. Up to ``WINDOW`` publishes are in flight at once (``bus.publish_fills``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.errors import Error as NatsError

from . import bus

log = logging.getLogger("trading_bot.bus")

WINDOW = 512           # publishes awaiting their ack at once
STOP_FLUSH = 2.0       # seconds a stop spends publishing what is still queued


class _Wake:
    """``set()`` from any thread wakes the delivery loop (a threading.Event's interface)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._early = False
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self._lock:
            self._loop, self._event = loop, event
            if self._early:
                event.set()

    def set(self) -> None:
        with self._lock:
            if self._loop is None or self._event is None:
                self._early = True
                return
            try:
                self._loop.call_soon_threadsafe(self._event.set)
            except RuntimeError:
                pass  # the loop has closed: the deliverer is stopping anyway


class BusDeliverer(threading.Thread):
    """Drains ``state()["outbox"]`` (guarded by ``lock``) to JetStream."""

    def __init__(self, url: str, state: Callable[[], dict[str, Any]], lock: threading.Lock,
                 initial_backoff: float = 0.1, max_backoff: float = 2.0):
        super().__init__(name="fill-bus", daemon=True)
        self.url = url
        self.state = state
        self.lock = lock
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.wake = _Wake()
        self.stopping = threading.Event()
        self.delivered = 0
        self.rejected = 0   # never: the broker refuses no well-formed fill; kept for /status
        self._stop_async: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the trading loop's side --------------------------------------------------------
    def stop(self) -> None:
        self.stopping.set()
        loop, event = self._loop, self._stop_async
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass
        self.join(STOP_FLUSH + 5.0)

    def drain_once(self) -> bool:
        """True when nothing is left to deliver (the thread made its last flush on stop)."""
        with self.lock:
            return not self.state()["outbox"]

    # -- the delivery thread ------------------------------------------------------------
    def _heads(self, n: int) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(f) for f in self.state()["outbox"][:n]]

    def _remove(self, fill_ids: set[str]) -> None:
        with self.lock:
            outbox = self.state()["outbox"]
            outbox[:] = [f for f in outbox if f["fill_id"] not in fill_ids]

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_async = asyncio.Event()
        if self.stopping.is_set():
            self._stop_async.set()
        woken = asyncio.Event()
        self.wake.bind(self._loop, woken)
        try:
            nc = await bus.connect(self.url, "trading-bot", self._stop_async)
        except asyncio.CancelledError:
            return
        log.info("publishing fills to %s (stream %s)", self.url, bus.STREAM)
        try:
            await self._deliver(nc, woken)
        finally:
            try:
                await asyncio.wait_for(nc.close(), 2.0)
            except (TimeoutError, NatsError):
                pass

    async def _deliver(self, nc: Client, woken: asyncio.Event) -> None:
        js = nc.jetstream()
        stream_ready = False
        backoff = self.initial_backoff
        flush_until: float | None = None
        loop = asyncio.get_running_loop()
        assert self._stop_async is not None
        while True:
            if self._stop_async.is_set():
                # One last flush of what is queued, bounded; the rest waits in the checkpoint.
                flush_until = flush_until or loop.time() + STOP_FLUSH
                if loop.time() >= flush_until or not self._heads(1):
                    return
            if not stream_ready:
                try:
                    await bus.ensure_stream(js)
                    stream_ready = True
                except (TimeoutError, NatsError) as exc:
                    log.warning("bus: FILLS stream not ready (%r)", exc)
                    await self._wait(woken, backoff, flush_until)
                    backoff = min(self.max_backoff, backoff * 2)
                    continue
            woken.clear()  # before reading the outbox: a fill queued now sets it again
            batch = self._heads(WINDOW)
            if not batch:
                await self._wait(woken, None, flush_until)
                continue
            results = await bus.publish_fills(js, batch)
            acked = {f["fill_id"] for f, r in zip(batch, results, strict=True) if not isinstance(r, BaseException)}
            if acked:
                self._remove(acked)
                self.delivered += len(acked)
                backoff = self.initial_backoff
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                if not all(isinstance(r, (NatsError, TimeoutError)) for r in failures):
                    raise next(r for r in failures if not isinstance(r, (NatsError, TimeoutError)))
                log.warning("bus: %d of %d fills not acked (%r); retrying in %.1fs",
                            len(failures), len(batch), failures[0], backoff)
                stream_ready = not any(isinstance(r, NatsError) and "no response" in str(r).lower()
                                       for r in failures)
                await self._wait(woken, backoff, flush_until)
                backoff = min(self.max_backoff, backoff * 2)

    async def _wait(self, woken: asyncio.Event, timeout: float | None, flush_until: float | None) -> None:
        """Until woken, stopped, or ``timeout``; while flushing, never past the flush deadline."""
        assert self._stop_async is not None
        if flush_until is not None:
            remaining = flush_until - asyncio.get_running_loop().time()
            timeout = max(0.0, min(timeout if timeout is not None else remaining, remaining))
        waits = [asyncio.ensure_future(woken.wait())]
        if not self._stop_async.is_set():
            waits.append(asyncio.ensure_future(self._stop_async.wait()))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
