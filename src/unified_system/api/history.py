"""History for charts: a fixed ring of samples per service, and the thread that fills it.

An observer (STYLE principle 12): the sampler reads the published snapshot and the live
figures of api/live.py, never owner state, and posts nothing to the owner. Each ring is
allocated whole when its service is first seen, as `array` columns (21 bytes a sample), so
its memory is fixed however long the supervisor runs; a service that a reload removed is
dropped at the next tick.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from unified_system.api.live import ALIVE_STATES, Figures

# column name -> array typecode. NaN (floats) and -1 (ints) stand for "no value" (JSON null).
COLUMNS: dict[str, str] = {
    "t": "I",                  # tenths of a second since the ring's epoch (13 years fit)
    "cpu_percent": "f",        # of one core, the whole process tree
    "memory_rss_bytes": "i",   # KiB (2 TiB fit), the whole process tree; served in bytes
    "restarts": "i",
    "probe_ms": "f",           # the latest probe's duration, any kind
    "ready": "b",              # 1 ready, 0 not
}
SAMPLE_BYTES = sum(array(code).itemsize for code in COLUMNS.values())


def capacity(period: float, keep: float) -> int:
    """Samples that cover `keep` seconds, plus the one at its start."""
    return math.ceil(keep / period) + 1


class Ring:
    """One service's samples, oldest overwritten first. Written by one thread; the lock
    only keeps a reader from seeing half a sample."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._cols: dict[str, array[Any]] = {name: array(code, [0]) * size for name, code in COLUMNS.items()}
        self._t, self._rss = self._cols["t"], self._cols["memory_rss_bytes"]
        self._rest = [(name, col, math.nan if col.typecode in "fd" else -1)
                      for name, col in self._cols.items() if name not in ("t", "memory_rss_bytes")]
        self._next = 0      # where the next sample goes
        self._count = 0
        self._epoch: int | None = None   # unix second of the first sample
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return sum(col.itemsize * len(col) for col in self._cols.values())

    def __len__(self) -> int:
        return self._count

    def add(self, sample: Mapping[str, float | int | None]) -> None:
        t = float(sample["t"] or 0.0)
        rss = sample.get("memory_rss_bytes")
        with self._lock:
            i = self._next
            if self._epoch is None:
                self._epoch = int(t)
            self._t[i] = max(0, round((t - self._epoch) * 10))
            self._rss[i] = -1 if rss is None else int(rss) // 1024
            for name, col, none in self._rest:   # no copy of the sample, no type tests
                value = sample.get(name)
                col[i] = none if value is None else value
            self._next = (i + 1) % self.size
            self._count = min(self._count + 1, self.size)

    def columns(self, since: float = -math.inf) -> dict[str, list[Any]]:
        """Oldest first, samples at or after `since`; None where there was no value."""
        with self._lock:
            start = (self._next - self._count) % self.size
            order = [(start + k) % self.size for k in range(self._count)]
            epoch, times = self._epoch or 0, self._cols["t"]
            order = [i for i in order if round(epoch + times[i] / 10, 1) >= since]
            out: dict[str, list[Any]] = {}
            for name, col in self._cols.items():
                values = [col[i] for i in order]
                if name == "t":
                    out[name] = [round(epoch + v / 10, 1) for v in values]
                elif name == "memory_rss_bytes":
                    out[name] = [None if v < 0 else v * 1024 for v in values]
                elif col.typecode in "fd":
                    out[name] = [None if math.isnan(v) else round(v, 2) for v in values]
                elif name == "ready":
                    out[name] = [None if v < 0 else bool(v) for v in values]
                else:
                    out[name] = [None if v < 0 else v for v in values]
            return out


def sample_of(obj: Mapping[str, Any], fig: Figures | None, probe: float | None,
              now: float) -> dict[str, Any]:
    """One service's sample from its published object and live figures."""
    alive = obj.get("state") in ALIVE_STATES
    return {
        "t": now,
        "cpu_percent": fig.cpu_percent if fig and alive else None,
        "memory_rss_bytes": fig.rss_bytes if fig and alive else None,
        "restarts": obj.get("restarts"),
        "probe_ms": None if probe is None else probe * 1000.0,
        "ready": bool(obj.get("ready")),
    }


class HistoryStore:
    """Every service's ring, and the sampler thread that feeds them every `period`."""

    def __init__(self, period: float, keep: float,
                 snapshot: Callable[[], Iterable[Mapping[str, Any]]],
                 figures: Callable[[Iterable[Mapping[str, Any]]], Mapping[str, Figures]],
                 probes: Callable[[], Mapping[str, float]],
                 publish: Callable[[dict[str, Any]], None],
                 listening: Callable[[], bool] = lambda: True) -> None:
        self.period, self.keep = period, keep
        self.size = capacity(period, keep)
        self._snapshot, self._figures, self._probes = snapshot, figures, probes
        self._publish, self._listening = publish, listening
        self.rings: dict[str, Ring] = {}   # replaced whole, so readers need no lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="history", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    @property
    def nbytes(self) -> int:
        return sum(ring.nbytes for ring in self.rings.values())

    def ring(self, name: str) -> Ring | None:
        return self.rings.get(name)

    def _run(self) -> None:
        # On the monotonic clock, so a wall-clock jump neither bunches nor stalls samples.
        due = time.monotonic()
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                self.tick(time.time())
            except Exception:   # a /proc race must not end the history for good
                from unified_system.logsetup import get_logger
                get_logger(component="history").exception("history sample failed")
            due = max(due + self.period, time.monotonic())

    def tick(self, now: float) -> None:
        snapshot = list(self._snapshot())
        figures = self._figures(snapshot)
        probes = self._probes()
        rings = self.rings
        names = {obj["name"] for obj in snapshot}
        if not names.issuperset(rings) or not names.issubset(rings):
            # Removed services are released; added ones get their (whole) ring now.
            rings = {name: rings.get(name) or Ring(self.size) for name in names}
            self.rings = rings
        listening = self._listening()   # no event stream open: no events to build
        for obj in snapshot:
            name = obj["name"]
            sample = sample_of(obj, figures.get(name), probes.get(name), now)
            rings[name].add(sample)
            if listening:
                del sample["t"]
                self._publish({"type": "sample", "service": name, "at": round(now, 1), **sample})


def empty_columns() -> dict[str, list[Any]]:
    """The answer's columns before a service's first sample."""
    return {name: [] for name in COLUMNS}


def since_query(query: str) -> float:
    """`?since=<unix time>`: a finite number of seconds, or -inf when absent."""
    from urllib.parse import parse_qs

    from unified_system.api.routes import ApiError
    try:
        values = parse_qs(query, keep_blank_values=True).get("since")
    except ValueError:
        raise ApiError(422, "bad query string") from None
    if not values:
        return -math.inf
    raw = values[-1]
    try:
        since = float(raw)
    except ValueError:
        raise ApiError(422, "since must be a unix time in seconds", got=raw[:50]) from None
    if not math.isfinite(since):
        raise ApiError(422, "since must be a finite number", got=raw[:50])
    return since
