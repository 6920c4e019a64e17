"""Live figures of the services' process trees, read from the OS at observation time.

The owner publishes `memory_rss_bytes` / `cpu_percent` as None: measuring is the observers'
job, so the owner never spends a /proc read. One sampler is shared by the API and /metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from unified_system.proc.treestat import TreeStats
from unified_system.proc.treestat import tree_pids as tree_pids  # where tests look for it

# Many readers (API calls, every scraper) share one sample this fresh: with 100 services a
# sample is a hundred /proc reads or more (proc/treestat.py: ~1 ms while they sleep, a walk
# of each tree that ran besides), and cpu_percent needs some interval to mean anything.
# Up to MAX_STALE old, a reader gets the last sample at once while a background thread
# takes the next (stale-while-revalidate); older than that, the reader samples itself.
MIN_INTERVAL = 0.25
MAX_STALE = 1.0
ALIVE_STATES = frozenset({"starting", "running", "stopping"})


class Figures(NamedTuple):   # not a frozen dataclass: 100 of those cost 0.2 ms a sample
    rss_bytes: int
    cpu_percent: float
    cpu_seconds: float


class LiveStats:
    def __init__(self, min_interval: float = MIN_INTERVAL, max_stale: float = MAX_STALE) -> None:
        self.min_interval = min_interval
        self.max_stale = max(min_interval, max_stale)
        self._trees = TreeStats()                      # each tree's last reading, for cpu_percent
        self._lock = threading.Lock()                  # one sampler at a time
        self._taken = -1e9
        self._figures: dict[str, Figures] = {}        # replaced whole, read without the lock
        self._pending: Iterable[Mapping[str, Any]] | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_rss: dict[str, int] = {}            # for the memory suggestion

    def figures(self, snapshot: Iterable[Mapping[str, Any]]) -> dict[str, Figures]:
        age = time.monotonic() - self._taken
        if age < self.min_interval:
            return self._figures
        if age < self.max_stale:
            self._refresh_soon(snapshot)
            return self._figures
        with self._lock:
            if time.monotonic() - self._taken >= self.min_interval:  # nobody sampled meanwhile
                self._refresh(snapshot)
            return self._figures

    def _refresh(self, snapshot: Iterable[Mapping[str, Any]]) -> None:
        self._figures = self._sample(snapshot)
        self._taken = time.monotonic()

    def _refresh_soon(self, snapshot: Iterable[Mapping[str, Any]]) -> None:
        self._pending = snapshot
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="live-stats", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:   # blocks without a timeout: no wake-ups while nobody reads
            self._wake.wait()
            self._wake.clear()
            snapshot, self._pending = self._pending, None
            if snapshot is not None:
                with self._lock:
                    if time.monotonic() - self._taken >= self.min_interval:
                        self._refresh(snapshot)

    def _sample(self, snapshot: Iterable[Mapping[str, Any]]) -> dict[str, Figures]:
        out: dict[str, Figures] = {}
        roots: set[int] = set()
        now = time.monotonic()
        for svc in snapshot:
            rss, pct, secs = 0, 0.0, 0.0
            for inst in svc.get("instances") or ():
                if inst.get("pid") is None or inst.get("state") not in ALIVE_STATES:
                    continue   # a stopped service costs no /proc read
                roots.add(inst["pid"])
                r, p, s = self._trees.sample(inst["pid"], now)
                rss, pct, secs = rss + r, pct + p, secs + s
            out[svc["name"]] = Figures(rss, round(pct, 1), secs)
            if rss:
                self.peak_rss[svc["name"]] = max(rss, self.peak_rss.get(svc["name"], 0))
        self._trees.retain(roots)   # exited processes: their files closed
        return out

    def close(self) -> None:
        with self._lock:
            self._trees.close()


def with_live(objects: Iterable[Mapping[str, Any]], figures: Mapping[str, Figures],
              now: float | None = None) -> list[dict[str, Any]]:
    """Copies of the snapshot's service objects with the live fields filled in."""
    now = time.time() if now is None else now
    out = []
    for obj in objects:
        svc = dict(obj)
        fig = figures.get(svc["name"])
        alive = svc.get("state") in ALIVE_STATES
        svc["memory_rss_bytes"] = fig.rss_bytes if fig and alive else None
        svc["cpu_percent"] = fig.cpu_percent if fig and alive else None
        started = svc.get("started_at")
        svc["uptime_seconds"] = round(max(0.0, now - started), 3) if started and alive else 0.0
        beat = svc.get("heartbeat_at")
        svc["heartbeat_age_seconds"] = round(max(0.0, now - beat), 3) if beat and alive else None
        out.append(svc)
    return out
