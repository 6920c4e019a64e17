"""Runs probe attempts off the owner thread and posts each result back to it.

http and tcp probes run on one thread over `selectors` and non-blocking sockets: a probe
is a connect, at most one request and one status line, so this is all the machinery it
needs. Measured with 100 services probed twice a second, a thread pool with a blocking
client cost several times the CPU, and asyncio's transports about twice. exec probes,
which wait on a process, use a small pool. Every attempt is cut off at its timeout.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from unified_system.core.events import Batch, ProbeResult
from unified_system.probes.checks import ProbeFailed, exec_check
from unified_system.probes.wire import Target, judge, request_for, target_of, tls_get
from unified_system.proc.seam import ProcessSeam

if TYPE_CHECKING:
    from unified_system.config.schema import Probe


@dataclass(eq=False)
class Attempt:
    inc: int
    role: str                # readiness | liveness | startup
    target: Target
    deadline: float
    started: float
    sock: socket.socket | None = None
    reply: bytearray = field(default_factory=bytearray)


class ProbeRunner:
    def __init__(self, seam: ProcessSeam, post: Callable[[object], None]) -> None:
        self._seam = seam
        self._post = post
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._inbox: list[Attempt] = []
        self._lock = threading.Lock()
        self._deadlines: list[tuple[float, int, Attempt]] = []
        self._seq = itertools.count()
        self._closing = False
        self._results: list[ProbeResult] = []
        self._thread = threading.Thread(target=self._run, name="probes", daemon=True)
        self._thread.start()
        self._exec_pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ from the owner
    def submit(self, inc: int, role: str, probe: Probe, cwd: Path, env: Mapping[str, str]) -> None:
        if probe.exec is not None:
            if self._exec_pool is None:
                self._exec_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe-exec")
            self._exec_pool.submit(self._exec_attempt, inc, role, probe, cwd, env)
            return
        now = time.monotonic()
        attempt = Attempt(inc, role, target_of(probe), now + probe.timeout, now)
        with self._lock:
            idle = not self._inbox
            self._inbox.append(attempt)
        if idle:  # one wake-up per batch of submissions
            self._wake_w.send(b"\0")

    # ------------------------------------------------------------------ the probe thread
    def _run(self) -> None:
        while not self._closing:
            if self._results:  # one hand-off per pass, however many probes finished in it
                results, self._results = self._results, []
                self._post(Batch(tuple(results)) if len(results) > 1 else results[0])
            timeout = max(0.0, self._deadlines[0][0] - time.monotonic()) if self._deadlines else None
            for key, mask in self._selector.select(timeout):
                if key.data is None:
                    self._take_inbox()
                else:
                    self._step(key.data, mask)
            now = time.monotonic()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, _, attempt = heapq.heappop(self._deadlines)
                if attempt.sock is not None:
                    self._finish(attempt, False, f"{attempt.target.what}: timed out after "
                                 f"{attempt.deadline - attempt.started:g}s")

    def _take_inbox(self) -> None:
        try:
            self._wake_r.recv(4096)
        except BlockingIOError:
            pass
        with self._lock:
            batch, self._inbox = self._inbox, []
        for attempt in batch:
            self._begin(attempt)

    def _begin(self, attempt: Attempt) -> None:
        target = attempt.target
        try:
            sock = socket.socket(target.family, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(target.address)
        except OSError as exc:
            self._post_result(attempt, False, f"{target.what}: {exc.strerror or exc}")
            return
        attempt.sock = sock
        if code not in (0, errno.EINPROGRESS):
            self._finish(attempt, False, f"{target.what}: {os.strerror(code)}")
            return
        self._selector.register(sock, selectors.EVENT_WRITE, attempt)
        heapq.heappush(self._deadlines, (attempt.deadline, next(self._seq), attempt))

    def _step(self, attempt: Attempt, mask: int) -> None:
        sock, target = attempt.sock, attempt.target
        if sock is None:  # finished already
            return
        try:
            if mask & selectors.EVENT_WRITE:    # connected, or failed to
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self._finish(attempt, False, f"{target.what}: {os.strerror(code)}")
                elif target.request is None:
                    self._finish(attempt, True, f"connected to {target.what}")
                elif target.tls:
                    self._tls(attempt)
                else:
                    sock.send(request_for(target))  # small: fits any fresh socket buffer
                    self._selector.modify(sock, selectors.EVENT_READ, attempt)
                return
            chunk = sock.recv(4096)
            attempt.reply += chunk
            if b"\n" in attempt.reply or not chunk or len(attempt.reply) > 8192:
                self._finish(attempt, *judge(target, bytes(attempt.reply)))
        except OSError as exc:
            self._finish(attempt, False, f"{target.what}: {exc.strerror or exc}")

    def _tls(self, attempt: Attempt) -> None:
        """https is rare for local health checks: done the simple way, within the deadline."""
        sock, attempt.sock = attempt.sock, None
        if sock is None:
            return
        self._selector.unregister(sock)
        try:
            ok, detail = tls_get(sock, attempt.target, max(0.05, attempt.deadline - time.monotonic()))
        except (OSError, ProbeFailed) as exc:
            ok, detail = False, f"{attempt.target.what}: {exc}"
        finally:
            sock.close()
        self._post_result(attempt, ok, detail)

    def _finish(self, attempt: Attempt, ok: bool, detail: str) -> None:
        if attempt.sock is not None:
            try:
                self._selector.unregister(attempt.sock)
            except (KeyError, ValueError):
                pass
            attempt.sock.close()
            attempt.sock = None
        self._post_result(attempt, ok, detail)

    def _post_result(self, attempt: Attempt, ok: bool, detail: str) -> None:
        self._results.append(ProbeResult(attempt.inc, attempt.role, ok, detail,
                                         time.monotonic() - attempt.started))

    # ------------------------------------------------------------------ exec probes
    def _exec_attempt(self, inc: int, role: str, probe: Probe, cwd: Path,
                      env: Mapping[str, str]) -> None:
        started = time.monotonic()
        try:
            if probe.exec is None:
                raise ProbeFailed(f"not an exec probe: {probe.kind}")
            ok, detail = True, exec_check(self._seam, probe.exec.command, cwd, env, probe.timeout)
        except ProbeFailed as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # a probe bug must not kill the pool or the owner
            ok, detail = False, f"probe error: {type(exc).__name__}: {exc}"
        self._post(ProbeResult(inc, role, ok, detail, time.monotonic() - started))

    def close(self) -> None:
        self._closing = True
        self._wake_w.send(b"\0")
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            if isinstance(key.fileobj, socket.socket):  # every one registered is
                key.fileobj.close()
        self._selector.close()
        self._wake_w.close()
        if self._exec_pool is not None:
            self._exec_pool.shutdown(wait=True, cancel_futures=True)
