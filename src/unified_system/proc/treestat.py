"""CPU and memory of the services' process trees, cheap enough to read every few seconds.

psutil read 100 sleeping trees in ~22 ms of CPU (a Process object, several /proc files and
a children walk per tree): every 5 s that was 0.5 % of a core for an idle supervisor. Here a
sample costs one `pread` of `/proc/<pid>/stat` per member (its CPU ticks), and one of `statm`
(its RSS) only when the stat line changed (the rss in `stat` is the kernel's rough per-CPU
sum, hundreds of KB off even on 2 cores; `statm` is exact, as psutil and `ps` read it):

- The files stay open between samples. An open /proc file belongs to its process, not to its
  number: once the process is reaped, the read fails (ESRCH) instead of reading a newcomer
  that was given the same pid. At most `held` files stay open; past that, opened per read.
- A tree is walked (`/proc/<pid>/task/<tid>/children` of every member) only when it may have
  changed: a new root, a member gone, or a member whose stat line changed since the last
  sample (a process that forks has run: its CPU ticks, minor faults (copy-on-write after a
  fork), thread count or last CPU moved). An unchanged line is not even parsed. A sleeping
  tree is walked again every REWALK seconds for what slipped by (a process that ran too
  briefly to change its line: under a clock tick, no page fault, on the same CPU).

One thread at a time (LiveStats' lock).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
REWALK = 300.0       # seconds: the longest a sleeping tree goes unwalked (100 walks: ~10 ms)
REMEASURE = 60.0     # seconds: the longest the RSS of a process that has not run goes unread
MAX_HELD = 1024      # open /proc files at most (and an eighth of the descriptor limit)
_STAT_BYTES = 4096   # a stat line is ~300 bytes; 52 numbers of 20 digits would still fit
_FILES = ("stat", "statm")


def tree_pids(root: int) -> list[int]:
    """root and its descendants, via /proc/<pid>/task/<tid>/children: O(tree), not O(host)."""
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    stack.extend(int(p) for p in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def held_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return MAX_HELD
    return max(0, min(MAX_HELD, soft // 8))


@dataclass
class _Member:
    fds: tuple[int, int] | None   # stat, statm; None: past the cap, opened for each read
    ticks: int = -1           # utime + stime at the previous read (-1: never read)
    at: float = 0.0           # monotonic time of that read
    raw: bytes = b""          # that read's stat line: the same line again = it has not run
    rss: int = 0              # bytes, from statm (stat's rss is the kernel's rough per-CPU sum)
    measured: float = -1e18   # monotonic time of the statm read


@dataclass
class _Tree:
    pids: list[int]
    walked: float


class TreeStats:
    def __init__(self, held: int | None = None, rewalk: float = REWALK,
                 remeasure: float = REMEASURE) -> None:
        self.held = held_limit() if held is None else held
        self.rewalk, self.remeasure = rewalk, remeasure
        self._trees: dict[int, _Tree] = {}       # root pid -> its members
        self._members: dict[int, _Member] = {}   # pid -> its open stat file and last reading
        self._open = 0
        self._roots: set[int] | None = None      # of the last retain()
        self.walks = 0                           # for tests and the bench: walks done

    def sample(self, root: int, now: float) -> tuple[int, float, float]:
        """(RSS bytes, percent of one core since the previous sample, CPU seconds) of the
        tree under root; `now` is monotonic. A member seen for the first time counts 0 %."""
        tree = self._trees.get(root)
        if tree is None or now - tree.walked >= self.rewalk:
            tree = self._walk(root, now)
        rss, pct, ticks, moved = 0, 0.0, 0, False
        for pid in tree.pids:
            reading = self._read(pid, now)
            if reading is None:
                moved = True
                continue
            r, p, t, changed = reading
            rss, pct, ticks, moved = rss + r, pct + p, ticks + t, moved or changed
        if moved:   # something ran (and may have forked) or exited: read the tree as it is now
            done = set(tree.pids)
            tree = self._walk(root, now)
            for pid in tree.pids:
                if pid not in done and (reading := self._read(pid, now)) is not None:
                    rss, pct, ticks = rss + reading[0], pct + reading[1], ticks + reading[2]
        return rss, pct, ticks / CLK_TCK

    def members(self, root: int) -> list[int]:
        """The pids of root's tree as last walked (empty before its first sample)."""
        tree = self._trees.get(root)
        return list(tree.pids) if tree else []

    @property
    def open_files(self) -> int:
        return self._open

    def retain(self, roots: set[int]) -> None:
        """Forget the trees of other roots, closing the files of members no tree holds."""
        if roots == self._roots:   # as last time: walks and failed reads kept the rest right
            return
        self._roots = set(roots)
        for root in set(self._trees) - roots:
            del self._trees[root]
        kept: set[int] = set()
        for tree in self._trees.values():
            kept.update(tree.pids)
        for pid in set(self._members) - kept:
            self._forget(pid)

    def close(self) -> None:
        self._trees.clear()
        self._roots = None
        for pid in list(self._members):
            self._forget(pid)
        self.held = 0

    # ------------------------------------------------------------------ internals
    def _walk(self, root: int, now: float) -> _Tree:
        self.walks += 1
        old = self._trees.get(root)
        tree = self._trees[root] = _Tree(tree_pids(root), now)
        if old is not None:
            for pid in set(old.pids) - set(tree.pids):
                self._forget(pid)
        return tree

    def _read(self, pid: int, now: float) -> tuple[int, float, int, bool] | None:
        """(rss, percent, ticks, changed since the last read) of one process; None when gone."""
        member = self._members.get(pid)
        if member is None:
            member = self._members[pid] = _Member(self._open_files(pid))
        try:
            raw = self._pread(pid, member, 0)
            if raw == member.raw and now - member.measured < self.remeasure:
                # The same line: it has not run. Its RSS is as last read, give or take what
                # the kernel reclaimed from it meanwhile (read again within `remeasure`).
                member.at = now
                return member.rss, 0.0, member.ticks, False
            member.rss = int(self._pread(pid, member, 1).split(None, 2)[1]) * PAGE_SIZE
            member.measured = now
            fields = raw.rsplit(b")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            self._forget(pid)
            return None
        pct = 0.0
        if member.ticks >= 0 and now > member.at:
            pct = max(0, ticks - member.ticks) / CLK_TCK / (now - member.at) * 100.0
        changed = bool(member.raw) and raw != member.raw
        member.ticks, member.at, member.raw = ticks, now, raw
        return member.rss, pct, ticks, changed

    @staticmethod
    def _pread(pid: int, member: _Member, which: int) -> bytes:
        """stat (0) or statm (1): from the held file, else opened for this read."""
        if member.fds is not None:
            return os.pread(member.fds[which], _STAT_BYTES, 0)
        with open(f"/proc/{pid}/{_FILES[which]}", "rb") as fh:
            return fh.read(_STAT_BYTES)

    def _open_files(self, pid: int) -> tuple[int, int] | None:
        if self._open + 2 > self.held:
            return None
        try:
            stat = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            statm = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(stat)
            return None
        self._open += 2
        return stat, statm

    def _forget(self, pid: int) -> None:
        member = self._members.pop(pid, None)
        if member is not None and member.fds is not None:
            for fd in member.fds:
                os.close(fd)
            self._open -= 2
