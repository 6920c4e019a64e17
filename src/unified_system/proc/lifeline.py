"""The services die with the supervisor, even when it is SIGKILLed.

A small guard process (`/bin/sh proc/guard.sh`, or `python -I -S proc/guard.py` where there
is no /bin/sh; named `unified-guard`) holds the read end of a pipe on its stdin. The seam
tells it each process group it spawns (`+pgid`) and each it has seen empty (`-pgid`). When
the supervisor dies, the pipe reaches end of file (its write end is close-on-exec, and no
child is forked without an exec once the guard runs), and the guard sends
`parent_death_signal` to every group still listed, grandchildren included, and exits.

One guard per supervisor replaces a `setpriv --pdeathsig` exec per child (~1 ms of CPU on
every spawn). The guard reads in batches, so a write seldom has a reader to wake: a line
costs the owner microseconds. Lines are short, so each write is atomic (< PIPE_BUF) from any
thread, and the write end is non-blocking: a stopped guard never stalls the owner. A fresh
interpreter without site-packages keeps the Python guard at ~4 MB of memory of its own (a
fork of the supervisor would come to own every page the supervisor later changes); the shell
guard needs ~0.3 MB of PSS and 1.7 MB of RSS (dash), and wakes per line, which costs a dash
read loop microseconds (bench/RESULTS.md, "Footprint").
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from unified_system.proc.guard import DEATH
from unified_system.proc.which import which

GUARD = str(Path(__file__).with_name("guard.py"))
SHELL_GUARD = str(Path(__file__).with_name("guard.sh"))
SHELL = "/bin/sh"


def guard_argv(signum: int, shell: str = SHELL) -> list[str]:
    """The smallest guard this system can run: the shell script, else the Python one."""
    if os.access(shell, os.X_OK):
        return [shell, SHELL_GUARD, str(int(signum)), which("sleep") or "/bin/sleep"]
    return [sys.executable, "-I", "-S", GUARD, "0", str(os.getpid()), str(int(signum))]


class Lifeline:
    """The supervisor's end. Start it from the thread that lives as long as the process
    (the main thread): a parent-death signal follows the thread that started the child."""

    def __init__(self, proc: subprocess.Popen, fd: int, shell: bool = False) -> None:
        self.pid, self._proc, self._fd = proc.pid, proc, fd
        self._shell = shell  # the shell guard reads with no pause: end of file wakes it
        self._lock = threading.Lock()
        self.lost = False  # the guard is gone (killed): groups are no longer covered

    @classmethod
    def start(cls, signum: int) -> Lifeline:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            argv = guard_argv(signum)
            proc = subprocess.Popen(argv, stdin=read_fd,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    close_fds=True)
        finally:
            os.close(read_fd)
        os.set_blocking(write_fd, False)
        return cls(proc, write_fd, shell=argv[0] == SHELL)

    def add(self, pgid: int, kill_after: float | None = None) -> None:
        """A group spawned; `kill_after`: its stop timeout, after which the guard SIGKILLs it
        (sent in whole milliseconds: the shell's arithmetic has integers only)."""
        self._send(f"+{pgid}\n" if kill_after is None else f"+{pgid} {round(kill_after * 1000)}\n")

    def remove(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """The supervisor is exiting: any group still listed gets the signal, as it would
        from PR_SET_PDEATHSIG (none is left after a clean shutdown)."""
        with self._lock:
            if self._fd < 0:
                return
            fd, self._fd = self._fd, -1
        os.close(fd)
        try:
            if not self._shell:
                os.kill(self.pid, DEATH)  # wake it from a batching pause: it finishes at once
            os.waitpid(self.pid, 0)
        except (ChildProcessError, ProcessLookupError):  # reaped already (an orphan sweep)
            pass
        self._proc.returncode = 0  # reaped above: Popen must never wait on a reused pid

    def _send(self, line: str) -> None:
        with self._lock:
            if self._fd < 0 or self.lost:
                return
            try:
                os.write(self._fd, line.encode())
            except (BrokenPipeError, BlockingIOError):
                # dead, or so far behind that 64 KiB of lines wait: either way not covering
                self.lost = True
