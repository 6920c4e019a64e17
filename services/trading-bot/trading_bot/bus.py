"""The bot's connection to the message bus: NATS with JetStream (docs/SPEC.md §9).

``connect(url, name)`` returns a connected client that reconnects by itself for ever;
``ensure_stream`` creates the FILLS stream or updates it (idempotent, like the backend's
own ``backend/bus.py``: either side may come first); ``publish_fill`` publishes one fill
and returns only once JetStream has acked it (stored, and replicated when R>1), with
``Nats-Msg-Id`` = fill id so a re-publish within the dedupe window is dropped by the broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType, StreamConfig
from nats.js.errors import BadRequestError

log = logging.getLogger("trading_bot.bus")

STREAM = "FILLS"
SUBJECTS = ["fills.>"]
DEDUPE_WINDOW = 120.0         # seconds; the backend's bus.py says the same
STREAM_NAME_IN_USE = 10058    # JetStream's err_code when add_stream meets an existing stream
CONNECT_BACKOFF = (0.1, 2.0)
PUBLISH_TIMEOUT = 2.0         # seconds for the ack; a timeout is retried with the same id
_SUBJECT_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject(symbol: str) -> str:
    """``fills.<symbol>``; a character NATS gives meaning to ('.', '*', '>', space) becomes '_'."""
    return "fills." + (_SUBJECT_UNSAFE.sub("_", symbol) or "_")


def replicas(env: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if env is None else env).get("NATS_REPLICAS", "1")
    value = int(raw)
    if not 1 <= value <= 5:
        raise ValueError(f"NATS_REPLICAS must be 1 to 5, not {raw!r}")
    return value


async def connect(url: str, name: str, stop: asyncio.Event | None = None) -> Client:
    """Connect, retrying a failed first connect with backoff (nats-py reconnects only after
    a first success); raises ``asyncio.CancelledError`` if ``stop`` is set first."""
    wait, longest = CONNECT_BACKOFF
    while True:
        try:
            return await nats.connect(url.split(","), name=name,
                                      token=os.environ.get("NATS_TOKEN") or None,
                                      max_reconnect_attempts=-1, reconnect_time_wait=0.25,
                                      connect_timeout=2, error_cb=_quiet)
        except (TimeoutError, NatsError, OSError) as exc:
            log.warning("bus %s unreachable (%s); retrying in %.1fs", url, exc, wait)
        try:
            await asyncio.wait_for((stop or asyncio.Event()).wait(), wait)
            raise asyncio.CancelledError
        except TimeoutError:
            pass
        wait = min(longest, wait * 2)


async def ensure_stream(js: JetStreamContext, num_replicas: int | None = None) -> None:
    config = StreamConfig(name=STREAM, subjects=SUBJECTS, storage=StorageType.FILE,
                          duplicate_window=DEDUPE_WINDOW, num_replicas=num_replicas or replicas())
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_NAME_IN_USE:
            raise
        await js.update_stream(config)


async def publish_fill(js: JetStreamContext, fill: Mapping[str, Any],
                       timeout: float = PUBLISH_TIMEOUT) -> PubAck:
    """Publish and wait for the broker's ack; ``ack.duplicate`` is an earlier copy's ack."""
    return await js.publish(subject(str(fill.get("symbol", ""))), json.dumps(fill).encode(),
                            timeout=timeout, stream=STREAM,
                            headers={"Nats-Msg-Id": str(fill["fill_id"])})


async def publish_fills(js: JetStreamContext, fills: Sequence[Mapping[str, Any]],
                        timeout: float = PUBLISH_TIMEOUT) -> list[PubAck | BaseException]:
    """Publish a window of fills at once and wait up to ``timeout`` for their acks: one
    result per fill, a PubAck or the error (``TimeoutError`` for an ack that did not come).
    Pipelined with ``publish_async``: no task per message, so a busy core publishes more."""
    sent: list[asyncio.Future[PubAck] | BaseException] = []
    for fill in fills:
        try:
            sent.append(await js.publish_async(
                subject(str(fill.get("symbol", ""))), json.dumps(fill).encode(),
                wait_stall=timeout, stream=STREAM, headers={"Nats-Msg-Id": str(fill["fill_id"])}))
        except (NatsError, TimeoutError) as exc:   # closed, reconnecting, or stalled
            sent.append(exc)
    waiting = [f for f in sent if isinstance(f, asyncio.Future)]
    if waiting:
        await asyncio.wait(waiting, timeout=timeout)
    results: list[PubAck | BaseException] = []
    for item in sent:
        if not isinstance(item, asyncio.Future):
            results.append(item)
        elif not item.done():
            item.cancel()   # a late ack is dropped; the fill stays queued and is re-published
            results.append(TimeoutError(f"no ack within {timeout}s"))
        elif item.cancelled():
            results.append(TimeoutError("cancelled"))
        else:
            error = item.exception()
            results.append(error if error is not None else item.result())
    return results


async def _quiet(exc: Exception) -> None:
    log.debug("bus: %s", exc)
