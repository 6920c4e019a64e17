"""Server-sent events: the owner's events fanned out to subscribers through bounded queues.

The hub's listener runs on the owner thread, so it only does put_nowait; a subscriber whose
queue is full is dropped (its socket shut down) rather than ever slowing the owner.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any

from unified_system.logsetup import get_logger, redact

QUEUE_SIZE = 512
KEEPALIVE = 15.0
_CLOSE = object()   # sentinel: the server is closing


def frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n".encode()


class Subscriber:
    def __init__(self, sock: socket.socket | None, size: int = QUEUE_SIZE) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self.sock = sock
        self.dropped = False

    def drop(self) -> None:
        """Wake a handler blocked in send() on a client that stopped reading."""
        self.dropped = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)   # never blocks
            except OSError:
                pass


class EventHub:
    def __init__(self, scrub: Callable[[Any], Any] = lambda data: data,
                 size: int = QUEUE_SIZE) -> None:
        """`scrub` redacts an event's data before it is encoded (Redactor.tree)."""
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()   # held only for set updates, never during I/O
        self.size = size
        self.scrub = scrub
        self.dropped_total = 0
        self.log = get_logger(component="sse")

    @property
    def count(self) -> int:
        return len(self._subs)

    def subscribe(self, sock: socket.socket | None) -> Subscriber:
        sub = Subscriber(sock, self.size)
        with self._lock:
            self._subs = self._subs | {sub}
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs = self._subs - {sub}

    def on_event(self, event: dict[str, Any]) -> None:
        """The owner's listener: encode once, enqueue everywhere, never wait."""
        subs = self._subs   # replaced whole on change, so iterating it needs no lock
        if not subs:
            return
        data = frame(str(event.get("type", "message")), self.scrub(redact(dict(event))))
        for sub in subs:
            try:
                sub.queue.put_nowait(data)
            except queue.Full:
                self.unsubscribe(sub)
                self.dropped_total += 1
                sub.drop()
                self.log.warning("sse subscriber dropped: too slow", queue=self.size)

    def close(self) -> None:
        with self._lock:
            subs, self._subs = self._subs, set()
        for sub in subs:
            try:
                sub.queue.put_nowait(_CLOSE)
            except queue.Full:
                sub.drop()

    def stream(self, sub: Subscriber, first: bytes, write: Callable[[bytes], object],
               keepalive: float = KEEPALIVE) -> None:
        """Run on the request's thread until the client goes, is dropped, or the server closes."""
        try:
            write(first)
            while not sub.dropped:
                try:
                    item = sub.queue.get(timeout=keepalive)
                except queue.Empty:
                    write(b": keep-alive\n\n")
                    continue
                if item is _CLOSE:
                    return
                write(item)
        except OSError:
            pass   # the client went away, or drop() shut the socket
        finally:
            self.unsubscribe(sub)
