"""The control API's front door: one thread accepts and reads every request whole, under
a deadline, before a thread is spent on it.

http.server alone gives each connection a thread from accept() on, so 200 clients that
dribble a header byte every few seconds held 131 threads, and 300 event streams took 248
threads and every free descriptor. Here an idle or slow connection costs one descriptor and
a buffer on the front's selector; a thread is taken only by a request that has arrived whole
(head and body), and only while fewer than `Limits.busy` are being answered. At the
connection limit a new connection takes the place of the one that has waited longest
without a whole request (a slow head, an idle kept-alive one), which gets 503 with
Retry-After: a flood of slow clients cannot lock out a prompt one, as nginx drops idle
connections when it runs out. Past the busy limit the client gets 503 too. When accept()
fails for want of descriptors or memory, the listening socket rests (a growing pause)
instead of being polled at once again: the pending connection stays readable, so retrying
at once spun a core at 91 %.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

REQUEST_QUEUE_SIZE = 128     # the listen backlog: a burst waits in the kernel, not in threads
MAX_HEAD = 64 * 1024         # http.server's own line limit; a longer head is refused (431)
ACCEPT_BURST = 64            # accepts per wake-up, so admitted clients are read in between
ACCEPT_PAUSE = (0.05, 1.0)   # the listening socket's rest after EMFILE & co: first, longest
LINGER = 2.0                 # a closing connection is read away this long (see _linger)
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


def canned(status: int, reason: str, message: str, retry_after: int | None = None) -> bytes:
    """A whole response written by the front itself (no handler, no scrubbing needed)."""
    body = json.dumps({"error": message}).encode()
    extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode() + body


def request_end(buf: bytes | bytearray, max_body: int) -> int | None:
    """Where the first request in `buf` ends (head and body), or None while incomplete.

    A body the handler will refuse (chunked, a bad or too large Content-Length) is not
    waited for: the handler answers that from the head alone."""
    ends = [i + n for i, n in ((buf.find(b"\r\n\r\n"), 4), (buf.find(b"\n\n"), 2)) if i >= 0]
    if not ends:
        return None
    head_end = min(ends)
    length = None
    for line in bytes(buf[:head_end]).split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return head_end
        if name == b"content-length":
            if length is not None:   # two: refused (400) by the handler
                return head_end
            try:
                length = int(value.strip())
            except ValueError:
                return head_end
    if length is None:
        return head_end
    if length < 0 or length > max_body:
        return head_end
    end = head_end + length
    return end if len(buf) >= end else None


class Reader:
    """A handler's rfile: what the front already read, then the socket (blocking, with the
    handler's timeout). What is left after the request (a pipelined next one) is `pending`."""

    def __init__(self, sock: socket.socket, data: bytes) -> None:
        self.sock = sock
        self.pending = bytearray(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.pending += chunk
        return bool(chunk)

    def readline(self, limit: int = -1) -> bytes:
        while True:
            newline = self.pending.find(b"\n")
            if newline >= 0 and (limit < 0 or newline < limit):
                return self._take(newline + 1)
            if 0 <= limit <= len(self.pending):
                return self._take(limit)
            if not self._fill():
                return self._take(len(self.pending))

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self.pending) < size) and self._fill():
            pass
        return self._take(len(self.pending) if size < 0 else min(size, len(self.pending)))

    def read1(self, size: int = 65536) -> bytes:
        """What is there, or one recv: a body sent slowly cannot make this wait for `size`."""
        if not self.pending:
            self._fill()
        return self._take(min(size, len(self.pending)))

    def _take(self, n: int) -> bytes:
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    def close(self) -> None:
        """The socket is the front's to keep or close."""


class Writer:
    """A handler's wfile: every write is whole (sendall), nothing is buffered."""

    closed = False

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> int:
        self.sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Conn:
    __slots__ = ("sock", "addr", "buf", "deadline", "draining")

    def __init__(self, sock: socket.socket, addr: Any, buf: bytes, deadline: float,
                 draining: bool = False) -> None:
        self.sock, self.addr, self.buf, self.deadline = sock, addr, bytearray(buf), deadline
        self.draining = draining   # answered, shut for writing: read away until EOF or deadline


#: answer(sock, addr, head) runs one request on its own thread; True: keep the connection,
#: with the bytes read past the request
Answer = Callable[[socket.socket, Any, bytes], tuple[bool, bytes]]


class Front:
    def __init__(self, listener: socket.socket, answer: Answer, limits: Limits,
                 max_body: int, log: Any, clock: Callable[[], float] = time.monotonic) -> None:
        """`log`: a structlog-style logger (warning, exception), the API's own."""
        self.listener = listener
        self.answer = answer
        self.limits = limits
        self.max_body = max_body
        self.clock = clock
        self.busy = 0
        self.refused = 0            # 503s for want of a slot, since start
        self.evicted = 0            # waiting connections closed to make room for a new one
        self.timed_out = 0          # requests that did not arrive whole within the deadline
        self.accept_pauses = 0
        self._lock = threading.Lock()   # `busy` is shared with the request threads
        self._conns: dict[socket.socket, _Conn] = {}
        self._back: SimpleQueue[tuple[socket.socket, Any, bytes | None]] = SimpleQueue()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_closed = False
        self._sel = selectors.DefaultSelector()
        self._closing = False
        self._pause = ACCEPT_PAUSE[0]
        self._resume_at: float | None = None
        self._earliest: float | None = None
        self.log = log
        listener.setblocking(False)
        self._sel.register(listener, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")

    @property
    def connections(self) -> int:
        return len(self._conns) + self.busy

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        try:
            while not self._closing:
                now = self.clock()
                wake = min((t for t in (self._earliest, self._resume_at) if t is not None),
                           default=None)
                for key, _ in self._sel.select(None if wake is None else max(0.0, wake - now)):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._woken()
                    else:
                        self._read(key.data)
                now = self.clock()
                if self._resume_at is not None and now >= self._resume_at:
                    self._resume_at = None
                    self._sel.register(self.listener, selectors.EVENT_READ, "listen")
                if self._earliest is not None and now >= self._earliest:
                    self._expire(now)
        finally:
            for conn in list(self._conns.values()):
                self._drop(conn)
            self._sel.close()
            with self._lock:   # a request thread may be about to wake us: never a reused fd
                self._wake_closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def close(self) -> None:
        """From any thread: the loop ends and closes what it holds."""
        self._closing = True
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._wake_closed:
                return
            try:
                os.write(self._wake_w, b"x")
            except OSError:   # full: it is woken already
                pass

    def _woken(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                sock, addr, leftover = self._back.get_nowait()
            except Empty:
                return
            if self._closing:
                _close(sock)
            elif leftover is None:   # answered, and not to be kept
                self._linger(sock, addr)
            else:
                self._admit(_Conn(sock, addr, leftover, self.clock() + self.limits.idle))

    # ------------------------------------------------------------------ accepting
    def _accept(self) -> None:
        for _ in range(ACCEPT_BURST):
            try:
                sock, addr = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in SCARCE:
                    self._rest(exc)
                return   # ECONNABORTED and the like: the next wake-up tries again
            self._pause = ACCEPT_PAUSE[0]
            if self.connections >= self.limits.connections:
                # dicts keep insertion order: the first is the one admitted longest ago
                oldest = next(iter(self._conns.values()), None)
                if oldest is None:   # all busy (cannot happen: busy < connections)
                    self._refuse(sock, addr, "too many connections to the control API")
                    continue
                self._forget(oldest)
                if not oldest.draining:   # its 503 without the linger: the room is for the new one
                    self.evicted += 1
                    self.refused += 1
                    _send(oldest.sock, canned(503, "Service Unavailable",
                                              "too many connections to the control API",
                                              self.limits.retry_after))
                _close(oldest.sock)
            sock.setblocking(False)
            self._admit(_Conn(sock, addr, b"", self.clock() + self.limits.deadline))

    def _rest(self, exc: OSError) -> None:
        """Stop polling the listener for a while; what waits in the backlog keeps waiting."""
        if self._pause == ACCEPT_PAUSE[0]:   # once per spell, not once per pause
            self.log.warning("control API cannot accept; pausing", error=exc.strerror,
                             open_connections=self.connections)
        self.accept_pauses += 1
        self._sel.unregister(self.listener)
        self._resume_at = self.clock() + self._pause
        self._pause = min(self._pause * 2, ACCEPT_PAUSE[1])

    def _admit(self, conn: _Conn) -> None:
        self._conns[conn.sock] = conn
        self._sel.register(conn.sock, selectors.EVENT_READ, conn)
        if self._earliest is None or conn.deadline < self._earliest:
            self._earliest = conn.deadline
        if conn.buf and not conn.draining:
            self._complete(conn)   # a pipelined request may already be whole

    # ------------------------------------------------------------------ reading
    def _read(self, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        if conn.draining:
            return
        conn.buf += chunk
        self._complete(conn)

    def _complete(self, conn: _Conn) -> None:
        end = request_end(conn.buf, self.max_body)
        if end is None:
            if len(conn.buf) > MAX_HEAD and b"\n\r\n" not in conn.buf and b"\n\n" not in conn.buf:
                self._forget(conn)
                self._say(conn.sock, conn.addr, canned(431, "Request Header Fields Too Large",
                                                       "request head too large"))
            return
        self._forget(conn)
        with self._lock:
            if self.busy >= self.limits.busy:
                full = True
            else:
                full, self.busy = False, self.busy + 1
        if full:
            self._refuse(conn.sock, conn.addr, "the control API is busy")
            return
        conn.sock.setblocking(True)
        try:
            threading.Thread(target=self._work, args=(conn,), name="api-request",
                             daemon=True).start()
        except RuntimeError:   # can't start new thread: no memory for its stack
            with self._lock:
                self.busy -= 1
            self._refuse(conn.sock, conn.addr, "the control API is out of threads")

    def _work(self, conn: _Conn) -> None:
        keep, leftover = False, b""
        try:
            keep, leftover = self.answer(conn.sock, conn.addr, bytes(conn.buf))
        except Exception:
            self.log.exception("control API request failed")
        finally:
            with self._lock:
                self.busy -= 1
        if self._closing:
            _close(conn.sock)
            return
        conn.sock.setblocking(False)
        self._back.put((conn.sock, conn.addr, leftover if keep else None))
        self._wake()

    # ------------------------------------------------------------------ deadlines
    def _expire(self, now: float) -> None:
        earliest = None
        for conn in list(self._conns.values()):
            if conn.deadline <= now:
                self._forget(conn)
                if conn.buf and not conn.draining:   # part of a request came: say why it is cut
                    self.timed_out += 1
                    self._say(conn.sock, conn.addr, canned(408, "Request Timeout",
                                                           "the request did not arrive in time"))
                else:          # idle kept alive, or read away long enough: just close
                    _close(conn.sock)
            elif earliest is None or conn.deadline < earliest:
                earliest = conn.deadline
        self._earliest = earliest

    def _forget(self, conn: _Conn) -> None:
        self._conns.pop(conn.sock, None)
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass

    def _drop(self, conn: _Conn) -> None:
        self._forget(conn)
        _close(conn.sock)

    def _refuse(self, sock: socket.socket, addr: Any, message: str) -> None:
        self.refused += 1
        self._say(sock, addr, canned(503, "Service Unavailable", message, self.limits.retry_after))

    def _say(self, sock: socket.socket, addr: Any, data: bytes) -> None:
        """A last answer, best effort and never blocking (a small one fits an empty send
        buffer), then the connection lingers."""
        _send(sock, data)
        self._linger(sock, addr)

    def _linger(self, sock: socket.socket, addr: Any) -> None:
        """Shut for writing, then read away what the client still sends, until it closes or
        for LINGER seconds: closing on unread data resets the connection, and a reset can
        destroy the answer before the client has read it (a 413 while the body still comes)."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            _close(sock)
            return
        if self.connections >= self.limits.connections:   # no room: the answer may be lost
            _close(sock)
            return
        self._admit(_Conn(sock, addr, b"", self.clock() + LINGER, draining=True))


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.setblocking(False)
        sock.send(data)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
