"""Who the control API's front (api/front.py) lets in: its limits, and the whole answers it
writes itself to those it turns away (503, 408, and the heads api/http1.py refuses)."""

from __future__ import annotations

import errno
import json
import socket
from typing import NamedTuple

from unified_system.api.http1 import phrase

REQUEST_QUEUE_SIZE = 128     # the listen backlog: a burst waits in the kernel, not in threads
ACCEPT_BURST = 64            # accepts per wake-up, so admitted clients are read in between
ACCEPT_PAUSE = (0.05, 1.0)   # the listening socket's rest after EMFILE & co: first, longest
LINGER = 2.0                 # a closing connection is read away this long (Front._linger)
#: accept() or a thread start failed for want of a resource the kernel may soon have again
SCARCE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EAGAIN})


class Limits(NamedTuple):
    connections: int           # open connections, idle and busy
    busy: int                  # requests answered at once, each on its own thread
    deadline: float = 10.0     # a request (head and body) must arrive whole within this
    idle: float = 10.0         # a kept-alive connection must send its next request within this
    retry_after: int = 2       # seconds, in a 503's Retry-After


def limits_for(nofile: int, streams: int) -> Limits:
    """Connections take at most half the descriptors the process may open (the rest is for
    services' pipes, logs, probes and spawns); `streams` event streams plus 16 other
    requests are answered at once, and there is always room for some waiting ones."""
    busy = streams + 16
    return Limits(connections=max(busy + 16, min(1024, nofile // 2)), busy=busy)


def canned(status: int, reason: str, message: str, retry_after: int | None = None,
           limit: int | None = None) -> bytes:
    """A whole response written by the front itself (no handler, no scrubbing needed: the
    message is ours, or h11's words about the client's own bytes, JSON-encoded)."""
    body = json.dumps({"error": message} if limit is None
                      else {"error": message, "limit": limit}).encode()
    extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    return (f"HTTP/1.1 {status} {reason or phrase(status)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode() + body


def send_nowait(sock: socket.socket, data: bytes) -> None:
    """Best effort and never blocking: a small answer fits an empty send buffer."""
    try:
        sock.setblocking(False)
        sock.send(data)
    except OSError:
        pass


def close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
