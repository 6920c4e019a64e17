"""The services die with the supervisor, even when it is SIGKILLed.

A small guard process, forked by `run` before any thread exists, holds the read end of a
pipe. The supervisor tells it each process group it spawns (`+pgid`) and each it has seen
empty (`-pgid`). When the supervisor dies (the guard's own PR_SET_PDEATHSIG fires, or the
pipe reaches end of file without a goodbye), the guard sends `parent_death_signal` to every
group still listed, grandchildren included, and exits.

One guard per supervisor replaces a `setpriv --pdeathsig` exec per child (~1 ms of CPU on
every spawn). The guard reads in batches, so a write seldom has a reader to wake: a line
costs the owner microseconds. Lines are short, so each write is atomic (< PIPE_BUF) from any
thread, and the write end is non-blocking: a stopped guard never stalls the owner.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import threading

PR_SET_PDEATHSIG = 1
DEATH = signal.SIGUSR1   # the guard's own parent-death signal; also "finish now" at close
BATCH = 0.2              # seconds the guard lets lines pile up before reading again
_libc = ctypes.CDLL(None, use_errno=True)
_IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP, signal.SIGTTIN,
            signal.SIGTTOU)


class Lifeline:
    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self._fd = pid, fd
        self._lock = threading.Lock()
        self.lost = False  # the guard is gone (killed): groups are no longer covered

    @classmethod
    def fork(cls) -> "Lifeline":
        """Start the guard. Call before any thread: the child runs Python after fork."""
        if threading.active_count() > 1:
            raise RuntimeError("Lifeline.fork() must run before any thread starts")
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(write_fd)
                _guard(read_fd, parent)
            finally:
                os._exit(0)
        os.close(read_fd)
        os.set_blocking(write_fd, False)
        return cls(pid, write_fd)

    # -- the supervisor's side ------------------------------------------------------------
    def arm(self, signum: int) -> None:
        self._send(f"s{int(signum)}\n")

    def add(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def release(self) -> None:
        """Not needed (`parent_death_signal: null`): the guard exits touching nothing."""
        self._end(b"bye\n")

    def close(self) -> None:
        """The supervisor is exiting: any group still listed gets the signal, as it would
        from PR_SET_PDEATHSIG (none is left after a clean shutdown)."""
        self._end(b"")

    def _end(self, last: bytes) -> None:
        with self._lock:
            if self._fd < 0:
                return
            fd, self._fd = self._fd, -1
        try:
            if last:
                os.set_blocking(fd, True)
                os.write(fd, last)
        except OSError:
            pass
        finally:
            os.close(fd)
        try:
            os.kill(self.pid, DEATH)  # wake it from a batching pause: it finishes at once
            os.waitpid(self.pid, 0)
        except (ChildProcessError, ProcessLookupError):  # reaped already (an orphan sweep)
            pass

    def _send(self, line: str) -> None:
        with self._lock:
            if self._fd < 0 or self.lost:
                return
            try:
                os.write(self._fd, line.encode())
            except (BrokenPipeError, BlockingIOError):
                # dead, or so far behind that 64 KiB of lines wait: either way not covering
                self.lost = True


class _Guard:
    """The guard's whole life, in the forked child."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.groups: set[int] = set()
        self.signum = 0
        self.pending = b""

    def drain(self) -> bool:
        """Read every line waiting; False at end of file (the supervisor is gone) or on
        goodbye (then nothing is to be signalled)."""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return True
            except InterruptedError:
                continue
            if not data:
                return False
            *lines, self.pending = (self.pending + data).split(b"\n")
            for line in lines:
                if line == b"bye":
                    self.signum = 0
                    return False
                kind, value = line[:1], int(line[1:])
                if kind == b"+":
                    self.groups.add(value)
                elif kind == b"-":
                    self.groups.discard(value)
                elif kind == b"s":
                    self.signum = value

    def run(self, parent: int) -> None:
        died_r, died_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(died_w)
        signal.signal(DEATH, lambda *_: None)  # the wakeup byte is what matters
        _libc.prctl(PR_SET_PDEATHSIG, DEATH, 0, 0, 0)
        os.set_blocking(self.fd, False)
        alive = os.getppid() == parent  # it may have died before prctl took effect
        while alive:
            ready = select.select([self.fd, died_r], [], [])[0]
            if died_r in ready or not self.drain():
                break
            # Let lines pile up in the pipe for a while: a write that finds no reader
            # waiting wakes nobody, so a burst of spawns costs the owner no context switches.
            if select.select([died_r], [], [], BATCH)[0]:
                break
        self.drain()  # what the supervisor wrote just before it died
        if self.signum:
            for pgid in self.groups:
                try:
                    os.killpg(pgid, self.signum)
                except OSError:
                    pass


def _guard(fd: int, parent: int) -> None:
    for signum in _IGNORED:
        signal.signal(signum, signal.SIG_IGN)
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write("unified-guard")
    except OSError:
        pass
    devnull = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):  # hold no pipe of whoever reads the supervisor's output
        os.dup2(devnull, std)
    os.closerange(3, fd)
    os.closerange(fd + 1, 65536)
    _Guard(fd).run(parent)
