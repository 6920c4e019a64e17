"""Which probe falls due when, and which results the owner must see at once.

The owner says once per incarnation and role "probe this" (`Plan`) and "stop"; the probe
thread repeats the attempts itself. Before, the owner armed a timer for every attempt and
took every result the moment it came: with 100 services probed twice a second that was
most of its work, while nearly every result only repeated the one before.

The owner still gets every result, in order, and counts thresholds on them; what changes is
when. A result is urgent when a decision may hang on it: the plan's first, a change of
verdict, or one of the first `success_threshold` successes or `failure_threshold`
failures in a row. Urgent results go at once, with any held before them. The others,
repeats past their threshold, wait up to `QUIET_HOLD` and go together.

Timing follows Kubernetes and Docker: `initial_delay`, then `period`; a readiness plan
uses `start_interval` until its first run of `success_threshold` successes. A plan goes
onto the 50 ms grid (so that one tick's attempts go out together) once it is steady:
readiness once reached, liveness from the start. Startup and unreached readiness run on
time: dependents wait on them. Pure: the clock is passed in, so tests drive it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GRID = 0.05          # the steady plans' grid (seconds)
QUIET_HOLD = 1.0     # how long a result nothing waits on may be held for company


@dataclass(frozen=True)
class Plan:
    """What the owner hands over: one incarnation's probe of one role."""
    inc: int
    role: str            # readiness | liveness | startup
    probe: Any           # the config record (config/view.py Record or the schema's Probe)
    delay: float         # seconds until the first attempt
    service: str = ""
    cwd: Path | None = None                                   # exec probes run there,
    env: Mapping[str, str] = field(default_factory=dict)      # with the service's env


@dataclass(eq=False)
class _Running:
    plan: Plan
    period: float
    start_interval: float | None
    success_threshold: int
    failure_threshold: int
    due: float
    last: bool | None = None
    streak: int = 0          # consecutive results equal to `last`
    reached: bool = False    # a run of success_threshold successes was seen
    busy: bool = False       # an attempt is out: the next is timed from its end
    gone: bool = False


class Plans:
    def __init__(self) -> None:
        self._by_key: dict[tuple[int, str], _Running] = {}
        self._heap: list[tuple[float, int, _Running]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._by_key)

    def add(self, plan: Plan, now: float) -> None:
        self.drop(plan.inc, plan.role)
        probe = plan.probe
        start = getattr(probe, "start_interval", None) if plan.role == "readiness" else None
        running = _Running(plan, probe.period, start or None, probe.success_threshold,
                           probe.failure_threshold, now + plan.delay)
        self._by_key[(plan.inc, plan.role)] = running
        heapq.heappush(self._heap, (running.due, next(self._seq), running))

    def drop(self, inc: int, role: str | None = None) -> None:
        """Stop probing an incarnation (role None: every role). An attempt already out still
        reports; the owner ignores results of what it no longer probes."""
        roles = (role,) if role is not None else ("readiness", "liveness", "startup")
        for name in roles:
            running = self._by_key.pop((inc, name), None)
            if running is not None:
                running.gone = True   # lazily out of the heap

    def next_due(self) -> float | None:
        heap = self._heap
        while heap and (heap[0][2].gone or heap[0][2].busy):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[Plan]:
        """The plans whose attempt is due; each is busy until its result comes back."""
        out: list[Plan] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, running = heapq.heappop(heap)
            if running.gone or running.busy:
                continue
            running.busy = True
            out.append(running.plan)
        return out

    def result(self, inc: int, role: str, ok: bool, now: float) -> bool | None:
        """Count one result, time the next attempt from now; whether it is urgent (None: no
        plan, a one-shot attempt or a dropped plan's last)."""
        running = self._by_key.get((inc, role))
        if running is None:
            return None
        changed = running.last is not ok
        running.streak = 1 if changed else running.streak + 1
        running.last = ok
        threshold = running.success_threshold if ok else running.failure_threshold
        urgent = changed or running.streak <= threshold
        if ok and running.streak >= running.success_threshold:
            running.reached = True
        running.busy = False
        period = running.period
        if running.start_interval is not None and not running.reached:
            period = running.start_interval
        due = now + period
        if running.reached or role == "liveness":
            due = math.ceil(due / GRID) * GRID
        running.due = due
        heapq.heappush(self._heap, (due, next(self._seq), running))
        return urgent
