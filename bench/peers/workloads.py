"""The five workloads, each run on one adapter class; every run cleans up in `finally`."""

from __future__ import annotations

import os
import signal
import statistics
import sys
import time

from common import (
    FLOOD,
    POLL,
    SLEEP,
    SPAWNER,
    Adapter,
    Program,
    alive,
    cmdline,
    cpu_seconds,
    pss_bytes,
    rss_bytes,
    split_tree,
)


class NotApplicable(Exception):
    """This supervisor cannot do this workload at all (honcho never restarts)."""


def wait_programs(ad: Adapter, count: int, program: Program, timeout: float = 120.0) -> list[int]:
    """Poll until `count` exec'd programs exist under the daemon; return their pids."""
    deadline = time.monotonic() + timeout
    while True:
        pid = ad.daemon_pid()
        if pid is not None:
            programs, _ = split_tree(pid, program)
            if len(programs) >= count:
                return programs
        if (why := ad.failed()) is not None:
            raise RuntimeError(why)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ad.name}: {len(programs) if pid else 0} of {count} programs after {timeout:.0f} s")
        time.sleep(POLL)


def overhead(ad: Adapter, program: Program) -> list[int]:
    return split_tree(ad.daemon_pid(), program)[1]


# --------------------------------------------------------------------------- crash
def crash(cls: type[Adapter], tuned: bool, kills: int, settle: float, timeout: float) -> dict:
    """SIGKILL the only program `kills` times; time from the kill until a replacement exec'd.
    `settle`: how long each process has been up before it is killed. Stops at the first kill
    that is not followed by a restart within `timeout`."""
    if not cls.restarts:
        raise NotApplicable("no restart")
    ad = cls(tuned)
    try:
        victim = Program("victim", [SLEEP, "infinity"])
        ad.configure([victim])
        ad.launch()
        [old] = wait_programs(ad, 1, victim)
        latencies: list[float] = []
        unprompted = 0
        for _ in range(kills):
            time.sleep(settle)
            if not alive(old):  # it died without our kill: count it, take the current one
                unprompted += 1
                print(f"[peers] {ad.name}: program {old} ({cmdline(old)!r}) died on its own", file=sys.stderr)
                old = wait_programs(ad, 1, victim, timeout)[0]
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            new = None
            while new is None and time.monotonic() < deadline:
                fresh = [p for p in split_tree(ad.daemon_pid() or 0, victim)[0] if p != old]
                new = fresh[0] if fresh else None
                if new is None:
                    time.sleep(POLL)
            if new is None:
                break
            latencies.append(time.perf_counter() - t0)
            old = new
        return {"latencies": latencies, "kills": min(kills, len(latencies) + 1), "unprompted": unprompted}
    finally:
        ad.close()


# --------------------------------------------------------------------------- start + idle
def start_idle(cls: type[Adapter], count: int, rounds: int, idle_seconds: float) -> dict:
    """Time from launching the start command to `count` exec'd programs, `rounds` times; in the
    first round also CPU and RSS of the supervisor's own processes over an idle window."""
    starts, idle = [], {}
    for i in range(rounds):
        ad = cls(False)
        try:
            programs = [Program(f"s{j:03d}", [SLEEP, "infinity"]) for j in range(count)]
            ad.configure(programs)
            t0 = time.perf_counter()
            ad.launch()
            wait_programs(ad, count, programs[0])
            starts.append(time.perf_counter() - t0)
            if i == 0:
                time.sleep(2.0)  # let start-up work settle before the idle window
                pids = overhead(ad, programs[0])
                c0, w0 = sum(map(cpu_seconds, pids)), time.monotonic()
                time.sleep(idle_seconds)
                c1, w1 = sum(map(cpu_seconds, pids)), time.monotonic()
                idle = {"cpu": (c1 - c0) / (w1 - w0), "rss": sum(map(rss_bytes, pids)),
                        "pss": sum(map(pss_bytes, pids)), "procs": len(pids)}
        finally:
            ad.close()
    return {"starts": starts, **idle}


# --------------------------------------------------------------------------- flood
def count_lines(path, start: int, end: int) -> int:
    lines = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            chunk = fh.read(min(left, 1 << 24))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            left -= len(chunk)
    return lines


def flood(cls: type[Adapter], seconds: float) -> dict:
    """One program writes 100-byte lines as fast as it can. Over the window: growth of the log
    file (bytes/s), complete lines captured (x 100 bytes = child output/s), supervisor CPU."""
    ad = cls(False)
    try:
        flooder = Program("flood", [sys.executable, str(FLOOD)])
        ad.configure([flooder])
        ad.launch()
        wait_programs(ad, 1, flooder)
        log = ad.log_path("flood")
        time.sleep(1.0)
        pids = overhead(ad, flooder)
        s0, c0, t0 = log.stat(), sum(map(cpu_seconds, pids)), time.monotonic()
        time.sleep(seconds)
        s1, c1, t1 = log.stat(), sum(map(cpu_seconds, pids)), time.monotonic()
        ad.graceful()  # stop writing before the log is read
        b0, b1 = s0.st_size, s1.st_size
        rotated = s1.st_ino != s0.st_ino or b1 < b0
        lines = None if rotated else count_lines(log, b0, b1)  # None: rotated, payload unknown
        return {"file_rate": (b1 - b0) / (t1 - t0),
                "payload_rate": lines * 100 / (t1 - t0) if lines is not None else None,
                "cpu": (c1 - c0) / (t1 - t0)}
    finally:
        ad.close()


# --------------------------------------------------------------------------- leftovers
def leftovers(cls: type[Adapter], tuned: bool, spawners: int) -> dict:
    """Programs that each start a grandchild ignoring SIGTERM; stop each with the supervisor's
    stop command; count grandchildren still alive once the supervisor reports them stopped."""
    ad = cls(tuned)
    try:
        markers = [ad.dir / f"gc{i}.pid" for i in range(spawners)]
        programs = [Program(f"p{i}", [sys.executable, str(SPAWNER), str(m)]) for i, m in enumerate(markers)]
        ad.configure(programs)
        ad.launch()
        for program in programs:
            wait_programs(ad, 1, program)
        deadline = time.monotonic() + 60
        while not all(m.exists() and m.read_text().strip() for m in markers):
            if time.monotonic() > deadline:
                raise TimeoutError("grandchildren did not report their pids")
            time.sleep(0.01)
        grandchildren = [int(m.read_text()) for m in markers]
        t0 = time.perf_counter()
        for i in range(spawners):
            ad.stop_program(f"p{i}")
            if not cls.restarts:
                break  # honcho: its only stop is of everything
        elapsed = time.perf_counter() - t0
        time.sleep(0.5)
        survivors = sum(1 for pid in grandchildren if alive(pid))
        return {"survivors": survivors, "spawners": spawners, "stop_seconds": elapsed / spawners,
                "note": ad.note}
    finally:
        ad.close()  # kills survivors too (they were re-parented to this subreaper)


def median(xs: list[float]) -> float:
    return statistics.median(xs)
