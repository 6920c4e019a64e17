"""The backend's connection to the message bus: NATS with JetStream (docs/SPEC.md §9).

``connect(url, name)`` returns a connected ``nats.aio.client.Client`` that reconnects on its
own for ever; ``ensure_stream(js, spec)`` creates a stream or brings an existing one to
``spec`` (idempotent: every client calls it at start, whoever comes first). The streams'
names, subjects and limits live here, in ``StreamSpec`` constants, so producers and
consumers agree on them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

log = logging.getLogger("backend.bus")

STREAM_NAME_IN_USE = 10058      # JetStream's err_code when add_stream meets an existing stream
DEDUPE_WINDOW = 120.0           # seconds: a re-published Nats-Msg-Id within it is dropped
CONNECT_BACKOFF = (0.1, 2.0)    # first and longest wait between failed first connects


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    duplicate_window: float = DEDUPE_WINDOW


FILLS = StreamSpec(name="FILLS", subjects=("fills.>",))


def replicas(env: Mapping[str, str] | None = None) -> int:
    """NATS_REPLICAS (default 1): 3 against a 3-node cluster (docs/deploy.md)."""
    raw = (os.environ if env is None else env).get("NATS_REPLICAS", "1")
    value = int(raw)
    if not 1 <= value <= 5:
        raise ValueError(f"NATS_REPLICAS must be 1 to 5, not {raw!r}")
    return value


async def connect(url: str, name: str, stop: asyncio.Event | None = None) -> Client:
    """Connect, retrying a failed first connect with backoff (nats-py only reconnects after a
    first success); afterwards the client reconnects by itself, without a limit. Raises
    ``asyncio.CancelledError`` if ``stop`` is set first. ``NATS_TOKEN`` (services.yaml's
    ``secrets``), when set, is the token the broker requires."""
    wait, longest = CONNECT_BACKOFF
    while True:
        try:
            return await nats.connect(
                url.split(","), name=name, token=os.environ.get("NATS_TOKEN") or None,
                max_reconnect_attempts=-1, reconnect_time_wait=0.25, connect_timeout=2,
                error_cb=_quiet, disconnected_cb=_said(f"{name}: disconnected"),
                reconnected_cb=_said(f"{name}: reconnected"))
        except (TimeoutError, NatsError, OSError) as exc:
            log.warning("bus %s unreachable (%s); retrying in %.1fs", url, exc, wait)
        if stop is not None:
            try:
                await asyncio.wait_for(stop.wait(), wait)
                raise asyncio.CancelledError
            except TimeoutError:
                pass
        else:
            await asyncio.sleep(wait)
        wait = min(longest, wait * 2)


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, num_replicas: int | None = None) -> None:
    """Create the stream, or update it to ``spec`` if it exists (file storage, dedupe window)."""
    config = StreamConfig(name=spec.name, subjects=list(spec.subjects), storage=StorageType.FILE,
                          duplicate_window=spec.duplicate_window,
                          num_replicas=num_replicas or replicas())
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_NAME_IN_USE:
            raise
        await js.update_stream(config)


async def _quiet(exc: Exception) -> None:
    # nats-py reports every failed reconnect attempt; one line each, not a traceback.
    log.debug("bus: %s", exc)


def _said(text: str):  # type: ignore[no-untyped-def]
    async def callback() -> None:
        log.warning("bus %s", text)
    return callback
