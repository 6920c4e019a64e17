"""The one reaper: a single thread epolls every child's pidfd and output pipe.

A pidfd becomes readable when its process exits, so exits are events, never timer ticks.
Output and exits share the thread on purpose: on an exit, the child's pipe is drained
first, so the last lines a crashing child printed are in its log before the owner hears
of the exit (a crash dump can quote them).
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import select
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from unified_system.core.policy import ExitStatus
from unified_system.logsetup import get_logger

READ_CHUNK = 1 << 20
BIG_PIPE = 1 << 20     # what a flooding child's pipe grows to
FLOOD_CHUNK = 32 << 10 # one transfer this big means the child is flooding
SPLICE_BELOW = 64 << 10  # a console budget under this: splice instead of reading
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
DRAIN_LIMIT = 8 << 20  # bytes drained at exit; a grandchild holding the pipe cannot stall reaping


class Sink(Protocol):
    # `chunk` is a view of the I/O thread's one read buffer: valid only during the call.
    def feed(self, chunk: memoryview, reader: PipeReader) -> None: ...
    def eof(self, reader: PipeReader) -> None: ...
    # Optional: console_budget() -> int and splice(reader, most) -> int (see ServiceOutput).


@dataclass(eq=False)
class PipeReader:
    fd: int
    sink: Sink
    state: dict = field(default_factory=dict)  # per-pipe scratch space for the sink (line framing)


@dataclass(eq=False)
class Watched:
    proc: subprocess.Popen
    pidfd: int
    reader: PipeReader | None
    on_exit: Callable[[ExitStatus], None]


def _own_children() -> list[int]:
    """Our direct children, from the kernel, across all our threads."""
    pids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as fh:
                pids.extend(int(p) for p in fh.read().split())
        except OSError:
            pass
    return pids


class IOThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="io", daemon=True)
        self._epoll = select.epoll()
        self._pipes: dict[int, PipeReader] = {}
        self._children: dict[int, Watched] = {}
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._closing = False
        # Held by spawn until the new child is registered, so an orphan sweep never reaps it.
        self.spawn_lock = threading.Lock()
        self.helpers: set[int] = set()  # pids that ProcessSeam.run waits for itself
        self._signal_fd: int | None = None
        self.on_signal: Callable[[int], None] | None = None  # from the signal wakeup fd
        self.reap_orphans = False
        self.orphans_reaped = 0
        # One buffer for every read, reused: a fresh 1 MiB bytes per read left this thread's
        # malloc arena fragmented, and the supervisor's RSS crept up under floods (issue 16).
        # An anonymous mapping, not a bytearray: a bytearray is zeroed, so all 1 MiB would be
        # resident from the start; here a page costs memory only once a read reaches it, and
        # services that say little never touch more than the first few.
        self._buffer = mmap.mmap(-1, READ_CHUNK)
        self._view = memoryview(self._buffer)
        self._calls: deque[Callable[[], None]] = deque()  # run on this thread (call_soon)

    # -- called from other threads (epoll_ctl is safe while this thread waits) --
    def watch(self, proc: subprocess.Popen, pidfd: int, pipe_fd: int | None, sink: Sink | None,
              on_exit: Callable[[ExitStatus], None]) -> None:
        reader = None
        if pipe_fd is not None and sink is not None:
            os.set_blocking(pipe_fd, False)
            reader = PipeReader(pipe_fd, sink)
            self._pipes[pipe_fd] = reader
            self._epoll.register(pipe_fd, select.EPOLLIN)
        self._children[pidfd] = Watched(proc, pidfd, reader, on_exit)
        try:
            self._epoll.register(pidfd, select.EPOLLIN)
        except OSError:  # ENOMEM, or max_user_watches: the caller ends the child
            del self._children[pidfd]
            if reader is not None:
                del self._pipes[reader.fd]
                self._epoll.unregister(reader.fd)
            raise

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn` on this thread: what only this thread may touch (a sink it writes)."""
        self._calls.append(fn)
        try:
            os.write(self._wake_w, b"c")
        except BlockingIOError:
            pass  # wake-ups pending already: the call runs with them

    def release_sink(self, sink: Sink, then: Callable[[], None]) -> None:
        """Close every pipe still feeding `sink` (a grandchild outside the group may hold
        one), then call `then`, on this thread: no write can race the sink's close."""
        def release() -> None:
            for reader in [r for r in self._pipes.values() if r.sink is sink]:
                self._drop_pipe(reader)
            then()
        self.call_soon(release)

    def _run_calls(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while self._calls:
            self._calls.popleft()()

    def listen_signals(self, signal_fd: int) -> None:
        """The signal module's wakeup fd: one byte, the signal's number, per signal caught."""
        self._signal_fd = signal_fd
        self._epoll.register(signal_fd, select.EPOLLIN)

    def _signals(self) -> None:
        fd, caught = self._signal_fd, b""
        if fd is None:
            return
        try:
            while chunk := os.read(fd, 512):
                caught += chunk
        except BlockingIOError:
            pass
        if self.reap_orphans and signal.SIGCHLD in caught:
            self._sweep_orphans()
        for signum in caught:
            if signum != signal.SIGCHLD and self.on_signal is not None:
                self.on_signal(signum)

    def _sweep_orphans(self) -> None:
        """As a subreaper, orphaned grandchildren become our children: on SIGCHLD, reap every
        child that is not one we spawned."""
        with self.spawn_lock:
            known = {w.proc.pid for w in self._children.values()} | self.helpers
            for pid in _own_children():
                if pid in known:
                    continue
                try:
                    got, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                if got:
                    self.orphans_reaped += 1

    def stop(self) -> None:
        self._closing = True
        os.write(self._wake_w, b"x")
        self.join(5)

    # -- the thread --
    def run(self) -> None:
        while not self._closing:
            try:
                ready = self._epoll.poll()
            except InterruptedError:
                continue
            for fd, _mask in ready:
                try:
                    if fd == self._signal_fd:
                        self._signals()
                    elif fd == self._wake_r:
                        self._run_calls()
                    elif fd in self._pipes:
                        self._read(self._pipes[fd], once=True)
                    elif fd in self._children:
                        self._reap(self._children.pop(fd))
                except Exception:  # this thread is every exit's and signal's only way in
                    get_logger().exception("I/O thread: handling an fd failed", fd=fd)
                    if fd in self._pipes:
                        self._drop_pipe(self._pipes[fd])
        for reader in list(self._pipes.values()):
            self._read(reader, once=False)
        self._run_calls()  # a sink released at shutdown still gets closed

    def _read(self, reader: PipeReader, once: bool, limit: int = DRAIN_LIMIT) -> None:
        taken = 0
        # A sink that can splice (ServiceOutput) also says how much the console still takes.
        splice = getattr(reader.sink, "splice", None)
        budget = getattr(reader.sink, "console_budget", None)
        while True:
            want = budget() if splice is not None and budget is not None else READ_CHUNK
            if want < SPLICE_BELOW and splice is not None and not reader.state.get("no_splice"):
                # Output the console will not show (over its budget): pipe to file inside the
                # kernel, never copied through Python.
                try:
                    moved = splice(reader, READ_CHUNK)
                except BlockingIOError:
                    return
                except OSError:
                    moved = -1
                if moved is None:  # not now (the log is near its limit): copy this chunk
                    moved = -2
                elif moved == 0:
                    self._close_pipe(reader)
                    return
                if moved > 0:
                    self._grow(reader, moved)
                    taken += moved
                    if once or taken >= limit:
                        return
                    continue
                if moved == -1:
                    reader.state["no_splice"] = True  # unsupported here (the file system): copy
            view = self._view[:min(READ_CHUNK, max(want, SPLICE_BELOW))]
            try:
                n = os.readv(reader.fd, [view])
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                n = 0
            if not n:
                self._close_pipe(reader)
                return
            self._grow(reader, n)
            reader.sink.feed(view[:n], reader)
            taken += n
            if once or taken >= limit:
                return

    @staticmethod
    def _grow(reader: PipeReader, moved: int) -> None:
        if moved >= FLOOD_CHUNK and not reader.state.get("grown"):
            # A child writing in such chunks is flooding: a 1 MiB pipe lets it run on while
            # we are busy elsewhere. Only such pipes pay for the resize.
            reader.state["grown"] = True
            try:
                fcntl.fcntl(reader.fd, F_SETPIPE_SZ, BIG_PIPE)
            except OSError:
                pass  # over /proc/sys/fs/pipe-max-size for this user: keep 64 KiB

    def _close_pipe(self, reader: PipeReader) -> None:
        self._pipes.pop(reader.fd, None)
        self._epoll.unregister(reader.fd)
        os.close(reader.fd)
        reader.sink.eof(reader)

    def _drop_pipe(self, reader: PipeReader) -> None:
        """_close_pipe after a failure: whatever else fails, the fd is gone from epoll."""
        try:
            self._close_pipe(reader)
        except Exception:
            get_logger().exception("I/O thread: closing a pipe failed", fd=reader.fd)

    def _reap(self, watched: Watched) -> None:
        try:
            if watched.reader is not None and watched.reader.fd in self._pipes:
                self._read(watched.reader, once=False)
        except Exception:  # the exit must be told all the same
            get_logger().exception("I/O thread: draining an exited child's output failed")
            if watched.reader is not None and watched.reader.fd in self._pipes:
                self._drop_pipe(watched.reader)
        self._epoll.unregister(watched.pidfd)
        os.close(watched.pidfd)
        try:
            _, status = os.waitpid(watched.proc.pid, 0)
            exit_status = ExitStatus.from_wait_status(status)
        except ChildProcessError:  # reaped elsewhere: a bug, but never hang the reaper on it
            exit_status = ExitStatus(code=-1)
        # Tell Popen it is done, so its finaliser never waitpid()s a recycled pid.
        watched.proc.returncode = (exit_status.code if exit_status.code is not None
                                   else -(exit_status.signal or 0))
        watched.on_exit(exit_status)
