"""Issue 19: the history's figures read cheaply (proc/treestat.py): one held /proc/<pid>/stat
per process, a tree walked again only when it may have changed. Real processes throughout."""

from __future__ import annotations

import os
import subprocess
import time

import psutil
import pytest

from harness import CHILDREN, PY, wait_until
from unified_system.proc.treestat import TreeStats, tree_pids


class Forker:
    """tests/children/forker.py, given orders on its stdin."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([PY, str(CHILDREN / "forker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.order("name forker")   # answered: the interpreter is up and sleeping on stdin

    def order(self, line: str) -> None:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n"

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.write("exit\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe and not pipe.closed:
                pipe.close()


@pytest.fixture
def forker():
    f = Forker()
    try:
        yield f
    finally:
        f.close()


def tree_rss(pid: int) -> int:
    return sum(psutil.Process(p).memory_info().rss for p in tree_pids(pid))


def test_a_sleeping_tree_is_read_without_walking_it_until_rewalk(forker):
    stats = TreeStats(rewalk=60.0)
    now = time.monotonic()
    rss, pct, _ = stats.sample(forker.proc.pid, now)
    assert stats.walks == 1 and stats.members(forker.proc.pid) == [forker.proc.pid]
    assert rss == tree_rss(forker.proc.pid) and pct == 0.0   # first sight: no interval yet
    for i in range(1, 6):   # it sleeps on stdin: the same figures, from the held file alone
        assert stats.sample(forker.proc.pid, now + i)[0] == rss
    assert stats.walks == 1 and stats.open_files == 2   # stat and statm
    stats.sample(forker.proc.pid, now + 60.0)   # the backstop for what a sample cannot see
    assert stats.walks == 2
    stats.close()
    assert stats.open_files == 0


def test_a_fork_is_counted_at_the_next_sample_and_an_exit_too(forker):
    stats = TreeStats(rewalk=3600.0)
    root = forker.proc.pid
    alone = stats.sample(root, time.monotonic())[0]
    forker.order("fork")   # fork + exec of sleep: the parent ran (copy-on-write faults)
    [kid] = wait_until(lambda: tree_pids(root)[1:], 10, "the grandchild")
    rss = stats.sample(root, time.monotonic())[0]
    assert stats.members(root) == [root, kid]
    assert rss > alone and stats.open_files == 4
    forker.order("kill")   # killed and reaped: its held files now fail to read
    assert stats.sample(root, time.monotonic())[0] == tree_rss(root)
    assert stats.members(root) == [root] and stats.open_files == 2


def test_the_held_file_of_a_reaped_process_never_reads_another():
    proc = subprocess.Popen(["/bin/sleep", "120"])
    stats = TreeStats()
    assert stats.sample(proc.pid, time.monotonic())[0] > 0 and stats.open_files == 2
    fd = os.open(f"/proc/{proc.pid}/stat", os.O_RDONLY)
    try:
        proc.kill()
        proc.wait()
        # What the module relies on: the open file belongs to the process, not to its number.
        with pytest.raises(ProcessLookupError):
            os.pread(fd, 4096, 0)
    finally:
        os.close(fd)
    assert stats.sample(proc.pid, time.monotonic()) == (0, 0.0, 0.0)
    stats.retain(set())
    assert stats.open_files == 0 and stats.members(proc.pid) == []


def test_cpu_percent_is_of_one_core_since_the_last_sample(forker):
    stats = TreeStats()
    root = forker.proc.pid
    t0 = time.monotonic()
    assert stats.sample(root, t0)[1] == 0.0
    start_ticks = stats.sample(root, t0 + 0.001)[2]
    forker.order("spin")   # one second of CPU, however long the busy machine takes to give it
    t1 = time.monotonic()
    _, pct, secs = stats.sample(root, t1)
    assert secs - start_ticks >= 0.9
    assert pct == pytest.approx((secs - start_ticks) / (t1 - t0 - 0.001) * 100, rel=0.05)
    assert stats.sample(root, t1 + 10.0)[1] == 0.0   # asleep again


def test_a_name_with_parentheses_and_spaces_is_read_right(forker):
    # The comm field is the one free-form part of /proc/<pid>/stat: a child picks it.
    forker.order("name ) R 1 2 (3 )")
    with open(f"/proc/{forker.proc.pid}/comm") as fh:
        assert fh.read().startswith(") R 1 2 (3 )")
    stats = TreeStats()
    rss, _, secs = stats.sample(forker.proc.pid, time.monotonic())
    assert rss == tree_rss(forker.proc.pid)
    times = psutil.Process(forker.proc.pid).cpu_times()
    assert secs == pytest.approx(times.user + times.system, abs=0.02)


def test_a_wide_tree_holds_no_more_files_than_its_cap(forker):
    for _ in range(24):
        forker.order("fork")
    def execed() -> bool:   # each grandchild is `sleep` now, no longer a copy of its parent
        kids = tree_pids(forker.proc.pid)[1:]
        return len(kids) == 24 and all(psutil.Process(k).name() == "sleep" for k in kids)
    wait_until(execed, 30, "24 grandchildren", seen=lambda: tree_pids(forker.proc.pid))
    capped, open_ = TreeStats(held=8), TreeStats(held=0)
    now = time.monotonic()
    rss = capped.sample(forker.proc.pid, now)[0]
    assert capped.open_files == 8 and len(capped.members(forker.proc.pid)) == 25
    assert open_.sample(forker.proc.pid, now)[0] == rss and open_.open_files == 0
    assert rss == tree_rss(forker.proc.pid)
    capped.close()
