"""Backoff and the circuit breaker, a part of lifecycle: when a failed unit may start again.

A failure waits an exponential, jittered delay; more than `max_restarts` within `window`
opens the circuit (FATAL); after `cooldown` it half-opens, and one more failure opens it
again. A unit that stays up `reset_after` closes it. Spawns that found descriptors or
memory scarce retry on a short backoff of their own, outside the budget.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from unified_system.core import policy
from unified_system.core.states import State
from unified_system.core.table import Services
from unified_system.core.timers import TimerHeap
from unified_system.core.unit import Unit

S = State


class Breaker:
    def __init__(self, table: Services, timers: TimerHeap, clock: Callable[[], float], log: Any,
                 rand: random.Random | None = None) -> None:
        self.table, self.timers, self.clock, self.log = table, timers, clock, log
        self.rand = rand or random.Random()

    def failed(self, unit: Unit, now: float, uptime: float, reason: str) -> None:
        """The unit failed and is to be restarted: back off, or open the circuit."""
        r = unit.spec.restart
        if uptime >= r.reset_after:
            unit.failures = 0
        unit.failures += 1
        # The budget counts the restarts a failure asked for; an operator's are not a crash loop.
        while unit.restart_times and now - unit.restart_times[0] >= r.window:
            unit.restart_times.popleft()  # only the window matters to the budget
        if unit.circuit == "half-open" or policy.budget_spent(
                [*unit.restart_times, now], now, r.window, r.max_restarts):
            self._open(unit, now)
            return
        unit.restart_times.append(now)
        delay = policy.next_delay(unit.failures, r.backoff.initial, r.backoff.max,
                                  r.backoff.multiplier, r.backoff.jitter, self.rand.random())
        if delay <= 0:
            self.table.transition(unit, S.PENDING, reason)
            return
        self.table.transition(unit, S.BACKOFF, reason, delay=round(delay, 3))
        unit.timers["backoff"] = self.timers.call_at(now + delay, lambda: self._backoff_over(unit))

    def scarce(self, unit: Unit, now: float, exc: BaseException) -> None:
        """EMFILE, ENFILE, EAGAIN or ENOMEM: the program is not at fault, so no exit code, no
        failure against the circuit's budget; retried on a short back-off of its own, as the
        flood that took the descriptors may end at any moment."""
        unit.scarce_tries += 1
        first, longest = policy.SCARCE_BACKOFF
        delay = policy.next_delay(unit.scarce_tries, first, longest, 2.0, 0.1, self.rand.random())
        self.table.transition(unit, S.BACKOFF, "resources", note=f"{exc}; retrying",
                              delay=round(delay, 3))
        unit.timers["backoff"] = self.timers.call_at(now + delay, lambda: self._backoff_over(unit))

    def _backoff_over(self, unit: Unit) -> None:
        unit.timers.pop("backoff", None)
        if unit.state is S.BACKOFF:
            self.table.transition(unit, S.PENDING, "backoff")

    def _open(self, unit: Unit, now: float) -> None:
        r = unit.spec.restart
        unit.circuit = "open"
        note = f"circuit open: more than {r.max_restarts} restarts within {r.window:g}s"
        self.table.transition(unit, S.FATAL, "circuit_open", note=note)
        self.table.publish({"type": "circuit_open", "service": unit.service})
        self._cool_down(unit, now)

    def reopen(self, unit: Unit) -> None:
        """A circuit open when the last supervisor stopped stays open, its cooldown anew."""
        unit.circuit = "open"
        self.table.transition(unit, S.FATAL, "circuit_open", note="circuit open (restored)")
        self._cool_down(unit, self.clock())

    def _cool_down(self, unit: Unit, now: float) -> None:
        cooldown = unit.spec.restart.cooldown
        if cooldown is not None:
            unit.timers["cooldown"] = self.timers.call_at(now + cooldown, lambda: self._half_open(unit))

    def _half_open(self, unit: Unit) -> None:
        unit.timers.pop("cooldown", None)
        if unit.state is S.FATAL and unit.desired_up:
            unit.circuit = "half-open"
            self.table.transition(unit, S.PENDING, "half-open")

    def stayed_up(self, unit: Unit, inc: int) -> None:
        """`reset_after` has passed since the spawn of `inc`: the failures are forgiven."""
        if unit.inc == inc:
            unit.failures = 0
            if unit.circuit != "closed":
                unit.circuit = "closed"
                self.log.info("circuit closed", service=unit.service)
                self.table.publish({"type": "recovered", "service": unit.service})
