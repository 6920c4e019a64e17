"""The owner's deadline heap: the loop waits exactly until the next deadline, never polls."""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(order=True)
class Timer:
    deadline: float
    seq: int
    action: Callable[[], Any] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        # Lazy deletion: popping a cancelled timer is cheaper than re-heapifying.
        self.cancelled = True


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def call_at(self, deadline: float, action: Callable[[], Any]) -> Timer:
        timer = Timer(deadline, next(self._seq), action)
        heapq.heappush(self._heap, timer)
        return timer

    def next_deadline(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].deadline if self._heap else None

    def pop_due(self, now: float) -> list[Timer]:
        due: list[Timer] = []
        while self._heap and (self._heap[0].cancelled or self._heap[0].deadline <= now):
            timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                due.append(timer)
        return due

    def __len__(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)


def wait_seconds(deadline: float | None, now: float) -> float | None:
    """How long the loop may wait for an event before `deadline`: None for ever.

    Clamped to threading.TIMEOUT_MAX: a longer wait makes queue.get raise OverflowError,
    outside every handler's guard (a child's EXTEND_TIMEOUT_USEC of 1e17 once did that)."""
    if deadline is None:
        return None
    wait = deadline - now
    if not math.isfinite(wait):   # a NaN deadline never comes due: wait the longest
        return threading.TIMEOUT_MAX if wait != -math.inf else 0.0
    return min(max(0.0, wait), threading.TIMEOUT_MAX)
