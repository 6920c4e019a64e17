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

import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

import h11

from unified_system.api.admission import (
    ACCEPT_BURST,
    ACCEPT_PAUSE,
    LINGER,
    REQUEST_QUEUE_SIZE,
    SCARCE,
    Limits,
    canned,
    limits_for,
)
from unified_system.api.admission import close_quietly as _close
from unified_system.api.admission import send_nowait as _send
from unified_system.api.http1 import Arrival, Incoming, Refusal, phrase

__all__ = ["REQUEST_QUEUE_SIZE", "Answer", "Front", "Limits", "canned", "limits_for"]


class _Conn:
    __slots__ = ("sock", "addr", "incoming", "deadline")

    def __init__(self, sock: socket.socket, addr: Any, incoming: Incoming | None,
                 deadline: float) -> None:
        self.sock, self.addr, self.incoming, self.deadline = sock, addr, incoming, deadline

    @property
    def draining(self) -> bool:
        """Answered and shut for writing: read away until EOF or the deadline."""
        return self.incoming is None


#: answer(sock, addr, arrival) runs one request on its own thread; True: keep the
#: connection (its h11 state, with any pipelined bytes, stays in arrival.wire)
Answer = Callable[[socket.socket, Any, Arrival], bool]


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
        self._back: SimpleQueue[tuple[_Conn, bool]] = SimpleQueue()
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
                conn, keep = self._back.get_nowait()
            except Empty:
                return
            if self._closing:
                _close(conn.sock)
            elif not keep:   # answered, and not to be kept
                self._linger(conn.sock, conn.addr)
            else:
                conn.deadline = self.clock() + self.limits.idle
                self._admit(conn)

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
            self._admit(_Conn(sock, addr, Incoming(), self.clock() + self.limits.deadline))

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
        if not conn.draining:
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
        if conn.incoming is None:
            return
        conn.incoming.feed(chunk)
        self._complete(conn)

    def _complete(self, conn: _Conn) -> None:
        assert conn.incoming is not None
        got = conn.incoming.pull(self.max_body)
        if got is None:
            if conn.incoming.continue_due:   # asked once the head passed: send the body
                conn.incoming.continue_due = False
                _send(conn.sock, conn.incoming.wire.send(
                    h11.InformationalResponse(status_code=100, headers=[],
                                              reason=b"Continue")))
            return
        self._forget(conn)
        if isinstance(got, Refusal):   # a bad head: answered here, without a thread
            self._say(conn.sock, conn.addr, canned(got.status, phrase(got.status), got.message,
                                                   limit=got.limit))
            return
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
            threading.Thread(target=self._work, args=(conn, got), name="api-request",
                             daemon=True).start()
        except RuntimeError:   # can't start new thread: no memory for its stack
            with self._lock:
                self.busy -= 1
            self._refuse(conn.sock, conn.addr, "the control API is out of threads")

    def _work(self, conn: _Conn, arrival: Arrival) -> None:
        keep = False
        try:
            keep = self.answer(conn.sock, conn.addr, arrival)
        except Exception:
            self.log.exception("control API request failed")
        finally:
            with self._lock:
                self.busy -= 1
        if self._closing:
            _close(conn.sock)
            return
        conn.sock.setblocking(False)
        self._back.put((conn, keep))
        self._wake()

    # ------------------------------------------------------------------ deadlines
    def _expire(self, now: float) -> None:
        earliest = None
        for conn in list(self._conns.values()):
            if conn.deadline <= now:
                self._forget(conn)
                if conn.incoming is not None and conn.incoming.partial:   # say why it is cut
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
        self._admit(_Conn(sock, addr, None, self.clock() + LINGER))

