"""Runs probe attempts off the owner thread and posts each result back to it.

The owner hands over a `Plan` per incarnation and role (`watch`) and takes it back
(`forget`); the attempts repeat here, timed by `plans.Plans`, which also says which results
the owner must have at once and which may wait for company (QUIET_HOLD). `submit` runs one
attempt (tests, and tools that probe once).

http and tcp probes run on one thread over one epoll and non-blocking sockets: a probe
is a connect, at most one request and one status line, so this is all the machinery it
needs. Measured with 100 services probed twice a second, a thread pool with a blocking
client cost several times the CPU, and asyncio's transports about twice. exec probes,
which wait on a process, use a small pool. Every attempt is cut off at its timeout.

Per attempt the thread makes the fewest syscalls a fresh connection allows: socket (born
non-blocking), connect, one epoll registration, send (a failed connect shows there, so no
SO_ERROR read for http), one modify, recv, close (which also leaves the epoll). A result
that repeats the last one of its probe waits up to HOLD for company, so the results of one
50 ms grid tick reach the owner in one Batch; a first or changed result goes at once.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import math
import os
import select
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
from unified_system.probes.plans import QUIET_HOLD, Plan, Plans
from unified_system.probes.wire import Target, judge, target_of
from unified_system.proc.seam import ProcessSeam

if TYPE_CHECKING:
    from unified_system.config.schema import Probe

HOLD = 0.03          # seconds a repeated result may wait for company: less than the owner's grid
REMEMBERED = 4096    # (incarnation, role) verdicts and parsed targets kept; cleared past it
_IN, _OUT = select.EPOLLIN, select.EPOLLOUT
_NONBLOCK = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


@dataclass(eq=False)
class Attempt:
    inc: int
    role: str                # readiness | liveness | startup
    target: Target
    deadline: float
    started: float
    sock: socket.socket | None = None
    reply: bytearray = field(default_factory=bytearray)
    sent: bool = False


class ProbeRunner:
    def __init__(self, seam: ProcessSeam, post: Callable[[object], None]) -> None:
        self._seam = seam
        self._post = post
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._epoll.register(self._wake_r.fileno(), _IN)
        self._attempts: dict[int, Attempt] = {}   # fd -> its attempt, while it is open
        self._inbox: list[Attempt] = []
        self._lock = threading.Lock()
        self._deadlines: list[tuple[float, int, Attempt]] = []
        self._seq = itertools.count()
        self._closing = False
        self._results: list[ProbeResult] = []
        self._post_by: float | None = None        # when the held results must go
        self._last: dict[tuple[int, str], bool] = {}
        self._targets: dict[int, tuple[Probe, Target | None, float]] = {}
        self._plans = Plans()                      # the probe thread's only
        self._orders: list[tuple[Plan | None, int, str | None]] = []   # under _lock: add / drop
        self._exec_done: list[tuple[int, str, bool, str, float]] = []   # under _lock
        self._thread = threading.Thread(target=self._run, name="probes", daemon=True)
        self._thread.start()
        self._exec_pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ from the owner
    def watch(self, plan: Plan) -> None:
        """Probe plan.inc's plan.role from now on, until `forget`."""
        self._order((plan, plan.inc, plan.role))

    def forget(self, inc: int, role: str | None = None) -> None:
        """Stop probing an incarnation (role None: all its probes)."""
        self._order((None, inc, role))

    def _order(self, order: tuple[Plan | None, int, str | None]) -> None:
        with self._lock:
            idle = not (self._inbox or self._orders or self._exec_done)
            self._orders.append(order)
        if idle:
            self._wake_w.send(b"\0")

    def submit(self, inc: int, role: str, probe: Probe, cwd: Path, env: Mapping[str, str]) -> None:
        target, timeout = self._target(probe)
        if target is None:
            if self._exec_pool is None:
                self._exec_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe-exec")
            self._exec_pool.submit(self._exec_attempt, inc, role, probe, cwd, env)
            return
        now = time.monotonic()
        attempt = Attempt(inc, role, target, now + timeout, now)
        with self._lock:
            idle = not (self._inbox or self._orders or self._exec_done)
            self._inbox.append(attempt)
        if idle:  # one wake-up per batch of submissions
            self._wake_w.send(b"\0")

    def _start(self, plan: Plan, now: float) -> None:
        """A plan's attempt fell due (on the probe thread)."""
        probe = plan.probe
        target, timeout = self._target(probe)
        if target is None:
            if self._exec_pool is None:
                self._exec_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe-exec")
            self._exec_pool.submit(self._exec_attempt, plan.inc, plan.role, probe,
                                   plan.cwd or Path("."), plan.env)
            return
        self._begin(Attempt(plan.inc, plan.role, target, now + timeout, now))

    def _target(self, probe: Probe) -> tuple[Target | None, float]:
        """The parsed target (None: an exec probe) and timeout, once per probe record: the
        same records come back every period, and each field read of one is a Python call."""
        found = self._targets.get(id(probe))
        if found is not None and found[0] is probe:
            return found[1], found[2]
        target = None if probe.exec is not None else target_of(probe)
        if len(self._targets) >= REMEMBERED:   # reload after reload: start over
            self._targets.clear()
        # The record is held, so its id cannot be reused by another while it is here.
        self._targets[id(probe)] = (probe, target, probe.timeout)
        return target, probe.timeout

    # ------------------------------------------------------------------ the probe thread
    def _run(self) -> None:
        wake = self._wake_r.fileno()
        poll, attempts = self._epoll.poll, self._attempts
        plans = self._plans
        while not self._closing:
            now = time.monotonic()
            for plan in plans.pop_due(now):
                self._start(plan, now)
            if self._post_by is not None and now >= self._post_by:
                self._flush()
            planned = plans.next_due()
            due = min(self._deadlines[0][0] if self._deadlines else now + 3600.0,
                      self._post_by if self._post_by is not None else now + 3600.0,
                      planned if planned is not None else now + 3600.0)
            woken = False
            for fd, mask in poll(max(0.0, due - now) if due - now < 3600.0 else -1):
                if fd == wake:
                    woken = True
                else:
                    attempt = attempts.get(fd)
                    if attempt is not None:
                        self._step(attempt, mask)
            if woken:  # after the events: a new socket may reuse a number closed just now
                self._take_inbox()
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
            orders, self._orders = self._orders, []
            done, self._exec_done = self._exec_done, []
        now = time.monotonic()
        for plan, inc, role in orders:
            if plan is None:
                self._plans.drop(inc, role)
            else:
                self._plans.add(plan, now)
        for attempt in batch:
            self._begin(attempt)
        for inc, role, ok, detail, took in done:
            self._post_result(inc, role, ok, detail, now - took)

    def _begin(self, attempt: Attempt) -> None:
        target = attempt.target
        try:
            sock = socket.socket(target.family, _NONBLOCK)
            code = sock.connect_ex(target.address)
        except OSError as exc:
            self._post_result(attempt.inc, attempt.role, False,
                              f"{target.what}: {exc.strerror or exc}", attempt.started)
            return
        attempt.sock = sock
        if code not in (0, errno.EINPROGRESS):
            self._finish(attempt, False, f"{target.what}: {os.strerror(code)}")
            return
        fd = sock.fileno()
        self._attempts[fd] = attempt
        self._epoll.register(fd, _OUT)
        heapq.heappush(self._deadlines, (attempt.deadline, next(self._seq), attempt))

    def _step(self, attempt: Attempt, mask: int) -> None:
        sock, target = attempt.sock, attempt.target
        if sock is None:  # finished already
            return
        try:
            if not attempt.sent:    # connected, or failed to
                if target.request is None:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        self._finish(attempt, False, f"{target.what}: {os.strerror(code)}")
                    else:
                        self._finish(attempt, True, f"connected to {target.what}")
                elif target.tls:
                    self._tls(attempt)
                else:
                    # Small: fits any fresh socket buffer. A failed connect raises its error here.
                    sock.send(target.wire)
                    attempt.sent = True
                    self._epoll.modify(sock.fileno(), _IN)
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
        self._forget(sock)
        try:
            from unified_system.probes.wire import tls_get

            ok, detail = tls_get(sock, attempt.target, max(0.05, attempt.deadline - time.monotonic()))
        except (OSError, ProbeFailed) as exc:
            ok, detail = False, f"{attempt.target.what}: {exc}"
        finally:
            sock.close()
        self._post_result(attempt.inc, attempt.role, ok, detail, attempt.started)

    def _forget(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self._attempts.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    def _finish(self, attempt: Attempt, ok: bool, detail: str) -> None:
        sock = attempt.sock
        if sock is not None:
            # close() takes the fd out of the epoll too: nothing else holds a copy of it
            self._attempts.pop(sock.fileno(), None)
            sock.close()
            attempt.sock = None
        self._post_result(attempt.inc, attempt.role, ok, detail, attempt.started)

    def _post_result(self, inc: int, role: str, ok: bool, detail: str, started: float) -> None:
        now = time.monotonic()
        self._results.append(ProbeResult(inc, role, ok, detail, now - started))
        urgent = self._plans.result(inc, role, ok, now)
        if urgent is not None:   # a planned attempt: the plan knows what decisions wait on it
            self._post_by = now if urgent else min(self._post_by or math.inf, now + QUIET_HOLD)
            return
        key = (inc, role)
        if self._last.get(key) is ok:   # a repeat: nothing waits on it but the next period
            if self._post_by is None:
                self._post_by = now + HOLD
            return
        if len(self._last) >= REMEMBERED:
            self._last.clear()          # old incarnations: at worst one result goes at once
        self._last[key] = ok
        self._post_by = now             # a first or changed verdict: readiness may wait on it

    def _flush(self) -> None:
        """One hand-off for everything finished since the last, in the order it finished."""
        results, self._results, self._post_by = self._results, [], None
        if results:
            self._post(Batch(tuple(results)) if len(results) > 1 else results[0])

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
        # Back through the probe thread, whose plans count it and time the next attempt.
        with self._lock:
            idle = not (self._inbox or self._orders or self._exec_done)
            self._exec_done.append((inc, role, ok, detail, time.monotonic() - started))
        if idle:
            try:
                self._wake_w.send(b"\0")
            except OSError:   # closed meanwhile: the result has nobody left to go to
                pass

    def close(self) -> None:
        self._closing = True
        self._wake_w.send(b"\0")
        self._thread.join(5)
        for attempt in list(self._attempts.values()):
            if attempt.sock is not None:
                attempt.sock.close()
        self._attempts.clear()
        self._epoll.close()
        self._wake_r.close()
        self._wake_w.close()
        if self._exec_pool is not None:
            self._exec_pool.shutdown(wait=True, cancel_futures=True)
