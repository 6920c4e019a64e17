"""The AI manager task queue (seed 001): priorities, rate limit, retries, dead letter, cost.

No HTTP and no threads in the core: ``AIManager.step(now)`` runs at most one attempt and
``next_wait(now)`` says how long until another could run, so tests drive it with a fake
clock. ``Worker`` is the small thread that calls them in production.

Handlers are deterministic and local (no model, no network); cost is an estimate from
token counts (about 4 characters per token), so cost accounting is exercised end to end.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .handlers import HANDLERS

PRIORITIES = {"high": 0, "normal": 1, "low": 2}
STATES = ("queued", "running", "retrying", "succeeded", "dead")
PRICE_PER_1K_TOKENS = 0.002  # USD, the same for every handler


def estimate_tokens(obj: Any) -> int:
    return max(1, len(json.dumps(obj, sort_keys=True)) // 4)


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up; time is passed in."""

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def try_take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_time(self, now: float) -> float:
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return (1.0 - self.tokens) / self.rate


def backoff_delay(attempt: int, initial: float, multiplier: float, maximum: float) -> float:
    """Delay before retry number ``attempt`` (1 = first retry): initial * multiplier^(n-1)."""
    return min(maximum, initial * multiplier ** max(0, attempt - 1))


@dataclass
class Task:
    id: int
    type: str
    payload: Any
    priority: str
    max_attempts: int
    created_at: float
    state: str = "queued"
    attempts: int = 0
    started_seq: list[int] = field(default_factory=list)  # global order of each attempt
    next_attempt_at: float | None = None
    result: Any = None
    errors: list[str] = field(default_factory=list)
    tokens: int = 0
    cost_usd: float = 0.0
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_usd"] = round(self.cost_usd, 8)
        return out


def task_stats(tasks: list[Task], dead_letters: int, rate: float) -> dict[str, Any]:
    """``GET /api/tasks/stats``: counts by state, attempts, tokens and cost (per type too);
    the same answer from the in-memory queue and from the bus (taskbus.py)."""
    by_state = {s: 0 for s in STATES}
    cost_by_type: dict[str, float] = {}
    for t in tasks:
        by_state[t.state] += 1
        cost_by_type[t.type] = cost_by_type.get(t.type, 0.0) + t.cost_usd
    return {
        "total": len(tasks),
        "by_state": by_state,
        "dead_letter": dead_letters,
        "attempts": sum(t.attempts for t in tasks),
        "tokens": sum(t.tokens for t in tasks),
        "cost_usd": round(sum(cost_by_type.values()), 8),
        "cost_by_type": {k: round(v, 8) for k, v in sorted(cost_by_type.items())},
        "rate_limit_per_second": rate,
    }


class AIManager:
    def __init__(
        self,
        rate_limit: float = 5.0,
        burst: float = 5.0,
        max_attempts: int = 3,
        backoff_initial: float = 0.5,
        backoff_multiplier: float = 2.0,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        handlers: dict[str, Callable[[Any], Any]] | None = None,
    ):
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = (backoff_initial, backoff_multiplier, backoff_max)
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.bucket = TokenBucket(rate_limit, burst, clock())
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # a worker waits on it
        self.tasks: dict[int, Task] = {}
        self.dead_letter: list[int] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._attempt_seq = itertools.count(1)
        self._ready: list[tuple[int, int, int]] = []  # (priority, seq, task id)
        self._delayed: list[tuple[float, int, int]] = []  # (due, seq, task id)

    # -- submission -------------------------------------------------------------------
    def validate(self, type_: str, priority: str) -> None:
        if type_ not in self.handlers:
            raise ValueError(f"unknown task type {type_!r}; known: {sorted(self.handlers)}")
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}; one of {list(PRIORITIES)}")

    def submit_many(self, specs: list[dict[str, Any]]) -> list[Task]:
        """Enqueue atomically: a worker sees all of them or none (keeps priority order)."""
        for spec in specs:
            self.validate(spec["type"], spec.get("priority", "normal"))
        with self.lock:
            now = self.clock()
            out = []
            for spec in specs:
                task = Task(
                    id=next(self._ids),
                    type=spec["type"],
                    payload=spec.get("payload"),
                    priority=spec.get("priority", "normal"),
                    max_attempts=int(spec.get("max_attempts") or self.max_attempts),
                    created_at=now,
                )
                self.tasks[task.id] = task
                heapq.heappush(self._ready, (PRIORITIES[task.priority], next(self._seq), task.id))
                out.append(task)
            self.changed.notify_all()
        return out

    def submit(self, type_: str, payload: Any = None, priority: str = "normal",
               max_attempts: int | None = None) -> Task:
        spec = {"type": type_, "payload": payload, "priority": priority,
                "max_attempts": max_attempts}
        return self.submit_many([spec])[0]

    # -- scheduling -------------------------------------------------------------------
    def _promote(self, now: float) -> None:
        # Retries whose backoff has passed rejoin the ready heap at their own priority.
        while self._delayed and self._delayed[0][0] <= now:
            _, _, task_id = heapq.heappop(self._delayed)
            task = self.tasks[task_id]
            heapq.heappush(self._ready, (PRIORITIES[task.priority], next(self._seq), task_id))

    def next_wait(self, now: float | None = None) -> float | None:
        """Seconds until ``step`` could run something; None when nothing is pending."""
        with self.lock:
            now = self.clock() if now is None else now
            self._promote(now)
            if self._ready:
                return self.bucket.wait_time(now)
            if self._delayed:
                return max(0.0, self._delayed[0][0] - now)
            return None

    def step(self, now: float | None = None) -> Task | None:
        """Run one attempt of the most urgent eligible task, if the rate limit allows."""
        with self.lock:
            now = self.clock() if now is None else now
            self._promote(now)
            if not self._ready or not self.bucket.try_take(now):
                return None
            _, _, task_id = heapq.heappop(self._ready)
            task = self.tasks[task_id]
            task.state = "running"
            task.attempts += 1
            task.started_seq.append(next(self._attempt_seq))
            task.next_attempt_at = None
            handler = self.handlers[task.type]
        # The handler runs outside the lock so submissions and reads never wait on it.
        tokens = estimate_tokens(task.payload)
        try:
            result, error = handler(task.payload), None
            tokens += estimate_tokens(result)
        except Exception as exc:  # noqa: BLE001 - any handler failure is a failed attempt
            result, error = None, f"{type(exc).__name__}: {exc}"
        with self.lock:
            done_at = now  # handlers are local and quick; the attempt's start time will do
            task.tokens += tokens
            task.cost_usd += tokens / 1000 * PRICE_PER_1K_TOKENS
            if error is None:
                task.state, task.result, task.finished_at = "succeeded", result, done_at
            elif task.attempts >= task.max_attempts:
                task.errors.append(error)
                task.state, task.finished_at = "dead", done_at
                self.dead_letter.append(task.id)
            else:
                task.errors.append(error)
                due = now + backoff_delay(task.attempts, *self.backoff)
                task.state, task.next_attempt_at = "retrying", due
                heapq.heappush(self._delayed, (due, next(self._seq), task.id))
            self.changed.notify_all()
        return task

    # -- reads ------------------------------------------------------------------------
    def get(self, task_id: int) -> dict[str, Any] | None:
        with self.lock:
            task = self.tasks.get(task_id)
            return None if task is None else task.to_dict()

    def list(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self.lock:
            chosen = [t for t in self.tasks.values() if state is None or t.state == state]
            return [t.to_dict() for t in sorted(chosen, key=lambda t: -t.id)[:limit]]

    def dead_letters(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.tasks[i].to_dict() for i in self.dead_letter]

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return task_stats(list(self.tasks.values()), len(self.dead_letter), self.bucket.rate)


class Worker(threading.Thread):
    """Drives ``AIManager.step`` and sleeps on its condition until something is due."""

    def __init__(self, manager: AIManager):
        super().__init__(name="ai-worker", daemon=True)
        self.manager = manager
        self._stop_requested = False

    def stop(self, timeout: float = 5.0) -> None:
        with self.manager.lock:
            self._stop_requested = True
            self.manager.changed.notify_all()
        self.join(timeout)

    def run(self) -> None:
        m = self.manager
        while not self._stop_requested:  # checked per task: a backlog must not delay a stop
            if m.step() is not None:
                continue
            wait = m.next_wait()
            with m.lock:
                if self._stop_requested:
                    return
                # A submission between next_wait() and here notifies under the lock we
                # hold now, so re-check the ready heap instead of sleeping through it.
                if wait is None and not m._ready:
                    m.changed.wait()
                elif wait:
                    m.changed.wait(min(wait, 1.0))
