"""The prober repeats each probe itself (probes/plans.py) and tells the owner only what it
must know at once.

Before, the owner armed a timer for every attempt and took every result as it came; with
100 services probed twice a second that was most of its work. Now the owner hands over a
plan per incarnation and role, and still gets every result, in order: the first, each change
of verdict and each result up to its threshold at once (readiness and restarts hang on
them), the repeats past their threshold together, up to QUIET_HOLD later.
"""

import queue
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from harness import QuietHandler, probe_runner, serving, wait_until
from unified_system.config.schema import Probe
from unified_system.core.events import Batch, ProbeResult
from unified_system.probes.plans import GRID, QUIET_HOLD, Plan, Plans


def spec(period=1.0, success=1, failure=3, start_interval=None):
    return SimpleNamespace(period=period, success_threshold=success, failure_threshold=failure,
                           start_interval=start_interval)


# ---------------------------------------------------------------- the plans alone (a fake clock)
def test_first_attempt_after_initial_delay_then_every_period_from_each_result():
    plans = Plans()
    plans.add(Plan(1, "readiness", spec(period=2.0, success=1), delay=0.5), now=100.0)
    assert plans.next_due() == 100.5
    assert plans.pop_due(100.4) == []
    [plan] = plans.pop_due(100.5)
    assert plans.next_due() is None          # busy: the next is timed from the result
    plans.result(1, "readiness", True, now=100.7)
    due = plans.next_due()
    assert 102.7 <= due < 102.7 + GRID       # reached: steady, on the grid
    assert abs(due / GRID - round(due / GRID)) < 1e-6


def test_start_interval_until_readiness_is_reached_then_period():
    plans = Plans()
    plans.add(Plan(1, "readiness", spec(period=5.0, success=2, start_interval=0.2), 0.0), 10.0)
    plans.pop_due(10.0)
    plans.result(1, "readiness", True, now=10.1)
    assert plans.next_due() == pytest.approx(10.3)     # not reached yet: on time, fast
    plans.pop_due(10.3)
    plans.result(1, "readiness", True, now=10.4)        # 2 in a row: reached
    assert plans.next_due() >= 15.4


def test_urgent_are_the_first_each_change_and_those_up_to_the_threshold():
    plans = Plans()
    plans.add(Plan(1, "liveness", spec(success=1, failure=3), 0.0), 0.0)
    verdicts = [True, True, True, False, False, False, False, True, True]
    urgent = []
    for t, ok in enumerate(verdicts, start=1):
        plans.pop_due(float(t))
        urgent.append(plans.result(1, "liveness", ok, now=float(t)))
    #            first  repeat repeat fail1 fail2 fail3 fail4 change repeat
    assert urgent == [True, False, False, True, True, True, False, True, False]


def test_a_dropped_plan_is_never_due_and_its_late_result_is_not_counted():
    plans = Plans()
    plans.add(Plan(1, "readiness", spec(), 0.0), 0.0)
    plans.add(Plan(1, "liveness", spec(), 0.0), 0.0)
    plans.add(Plan(2, "liveness", spec(), 0.0), 0.0)
    plans.drop(1)
    assert [p.inc for p in plans.pop_due(1.0)] == [2]
    assert plans.result(1, "liveness", False, now=1.0) is None
    assert len(plans) == 1


# ---------------------------------------------------------------- the real prober, real HTTP
@pytest.fixture
def flip_server():
    """Answers 200 until told otherwise, counting requests."""
    state = {"code": 200, "seen": 0}

    class Handler(QuietHandler):
        def do_GET(self):
            state["seen"] += 1
            self.send_response(state["code"])
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as port:
        yield port, state


class Received:
    """What the prober posted: the hand-offs, and the results in them, in order."""

    def __init__(self, posts: queue.SimpleQueue) -> None:
        self.posts, self.got, self.flat = posts, [], []

    def until(self, enough: Callable[[list[ProbeResult]], bool]) -> None:
        wait_until(lambda: self._drain() or enough(self.flat), timeout=60,
                   seen=lambda: ([r.ok for r in self.flat], len(self.got)))

    def _drain(self) -> None:
        while True:
            try:
                post = self.posts.get_nowait()
            except queue.Empty:
                return
            self.got.append(post)
            self.flat.extend(post.events if isinstance(post, Batch) else (post,))


def http_probe(port: int, period: str, **more) -> Probe:
    return Probe.model_validate({"http": {"url": f"http://127.0.0.1:{port}/"}, "period": period,
                                 "timeout": "5s", **more})


def test_the_prober_repeats_a_plan_and_hands_repeats_over_together(flip_server):
    port, state = flip_server
    with probe_runner() as (prober, posts):
        rx = Received(posts)
        started = time.monotonic()
        prober.watch(Plan(3, "liveness", http_probe(port, "50ms"), 0.0))
        rx.until(lambda flat: len(flat) >= 30)   # no resubmission: the plan repeats itself
        elapsed = time.monotonic() - started
        prober.forget(3)
    got, flat = rx.got, rx.flat
    assert all(r.ok and r.inc == 3 and r.role == "liveness" for r in flat)
    # 30 results 50 ms apart (longer on a busy machine): the first goes at once, then at
    # most one hand-off per QUIET_HOLD (one per result before: 30).
    assert len(got) <= 2 + elapsed / QUIET_HOLD + 1, (len(got), elapsed)
    assert state["seen"] >= len(flat)


def test_a_failure_goes_at_once_with_the_repeats_held_before_it_in_order(flip_server):
    port, state = flip_server
    with probe_runner() as (prober, posts):
        rx = Received(posts)
        prober.watch(Plan(4, "liveness", http_probe(port, "50ms", failure_threshold=2), 0.0))
        rx.until(lambda flat: len(flat) >= 3)
        state["code"] = 500
        rx.until(lambda flat: sum(not r.ok for r in flat) >= 4)
        prober.forget(4)
    got, flat = rx.got, rx.flat
    oks = [r.ok for r in flat]
    first_failure = oks.index(False)
    assert all(oks[:first_failure]) and not any(oks[first_failure:])   # in order, none lost
    # The failures up to the threshold are urgent: each ends its hand-off (went at once,
    # with the repeats held before it); the third, a repeat past it, waits for company.
    ends = [(post.events if isinstance(post, Batch) else (post,))[-1] for post in got]
    failures = [r for r in flat if not r.ok]
    assert failures[0] in ends and failures[1] in ends


def test_forget_stops_the_attempts(flip_server):
    port, state = flip_server
    with probe_runner() as (prober, posts):
        prober.watch(Plan(5, "readiness", http_probe(port, "50ms"), 0.0))
        Received(posts).until(lambda flat: len(flat) >= 3)
        prober.forget(5)
        # An attempt may have been out when forget arrived: wait until none came for 0.3 s
        # (6 periods), then see that none comes in 0.5 s more (10 periods).
        quiet = threading.Event()
        last = [-1]

        def settled() -> bool:
            seen, last[0] = last[0], state["seen"]
            return not quiet.wait(0.3) and seen == state["seen"]

        wait_until(settled, timeout=30)
        before = state["seen"]
        quiet.wait(0.5)
        assert state["seen"] == before
