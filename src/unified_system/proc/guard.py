"""The guard process (proc/lifeline.py has the supervisor's side): it keeps the list of the
supervisor's process groups and, when the supervisor dies, signals those still alive.

Run as `python -I -S guard.py FD PARENT SIGNUM`: the standard library only, and as little
of it as will do, since this process lives as long as the supervisor. proc/guard.sh is the
same guard as a shell script, ~8 MB smaller; this one serves where there is no /bin/sh.

Lines: `+PGID [KILL_AFTER]` (a group spawned; KILL_AFTER its stop timeout in milliseconds) and
`-PGID` (a group seen empty). After the signal, a group still not empty when its
KILL_AFTER has passed gets SIGKILL, as the supervisor itself would have done: a child that
ignores SIGTERM must not outlive it, holding a port the next supervisor needs.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
DEATH = signal.SIGUSR1   # the guard's own parent-death signal; also "finish now" at close
BATCH = 0.2              # seconds the guard lets lines pile up before reading again
KILL_AFTER = 10.0        # a group's stop timeout when its line names none (SPEC §2 default)
EMPTY_POLL = 0.05        # seconds between checks that the signalled groups are empty
_IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP, signal.SIGTTIN,
            signal.SIGTTOU)


class _Guard:
    """The guard's whole life, in its own interpreter."""

    def __init__(self, fd: int, signum: int) -> None:
        self.fd, self.signum = fd, signum
        self.groups: dict[int, float] = {}  # pgid -> seconds from the signal to SIGKILL
        self.pending = b""

    def drain(self) -> bool:
        """Read every line waiting; False at end of file (the supervisor is gone)."""
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
                if line[:1] == b"+":
                    pgid, _, after = line[1:].partition(b" ")
                    self.groups[int(pgid)] = int(after) / 1000 if after else KILL_AFTER
                elif line[:1] == b"-":
                    self.groups.pop(int(line[1:]), None)

    def run(self, parent: int) -> None:
        died_r, died_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(died_w)
        signal.signal(DEATH, lambda *_: None)  # the wakeup byte is what matters
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, DEATH, 0, 0, 0)
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
        self.finish()

    def finish(self) -> None:
        """The signal to every group, then SIGKILL to those not empty after their timeout."""
        start = time.monotonic()
        for pgid in list(self.groups):
            if not _signal(pgid, self.signum):
                del self.groups[pgid]
        if self.signum == signal.SIGKILL:
            return
        while self.groups:
            now = time.monotonic()
            for pgid, after in list(self.groups.items()):
                if not _signal(pgid, 0):
                    del self.groups[pgid]
                elif now - start >= after:
                    _signal(pgid, signal.SIGKILL)
                    del self.groups[pgid]
            if self.groups:
                # No event says "this group is empty" (its members are not our children):
                # a bounded poll, for at most the longest stop timeout.
                time.sleep(EMPTY_POLL)


def _signal(pgid: int, signum: int) -> bool:
    """False when the group has no live process left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return signum != 0 or group_has_live_member(pgid)


def group_has_live_member(pgid: int) -> bool:
    """Whether a process of the group is alive: kill(-pgid, 0) also counts zombies, and an
    init that does not reap (some containers' PID 1) keeps them for ever."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _main(argv: list[str]) -> None:
    for ignored in _IGNORED:  # a terminal's ^C or a group-wide TERM is for the supervisor
        signal.signal(ignored, signal.SIG_IGN)
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write("unified-guard")
    except OSError:
        pass
    fd, parent, signum = map(int, argv)
    _Guard(fd, signum).run(parent)


if __name__ == "__main__":
    _main(sys.argv[1:])
