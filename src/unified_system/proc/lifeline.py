"""The services die with the supervisor, even when it is SIGKILLed.

A small guard process, forked by `run` before any thread exists, holds the read end of a
pipe. The supervisor tells it each process group it spawns (`+pgid`) and each it has seen
empty (`-pgid`). If the pipe reaches end of file without a goodbye, the kernel closed it
because the supervisor died: the guard sends `parent_death_signal` to every group still
listed (grandchildren included, which PR_SET_PDEATHSIG never reached) and exits.

One guard per supervisor replaces a `setpriv --pdeathsig` exec per child, which cost ~1 ms
of CPU on every spawn. Messages are short lines, so each write is atomic (< PIPE_BUF) from
any thread, and the write end is non-blocking: a stopped guard never stalls the owner.
"""

from __future__ import annotations

import os
import signal
import threading

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
        pid = os.fork()
        if pid == 0:
            try:
                os.close(write_fd)
                _guard(read_fd)
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
            os.waitpid(self.pid, 0)
        except ChildProcessError:  # already reaped (a subreaper's orphan sweep)
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


def _guard(fd: int) -> None:
    """The guard's whole life, in the forked child."""
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
    groups: set[int] = set()
    signum = 0
    pending = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            if line == b"bye":
                return
            kind, value = line[:1], int(line[1:])
            if kind == b"+":
                groups.add(value)
            elif kind == b"-":
                groups.discard(value)
            elif kind == b"s":
                signum = value
    if signum:  # the supervisor died without a goodbye
        for pgid in groups:
            try:
                os.killpg(pgid, signum)
            except OSError:
                pass
