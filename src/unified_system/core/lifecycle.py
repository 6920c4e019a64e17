"""Lifecycle: spawning, stopping and exits, the life of one incarnation, and what follows
its end: backoff and the circuit breaker (breaker.py), restarts, rolling restarts
(rollout.py), restarts of dependents.

Probing and vitals learn that a unit was spawned, became ready or exited through the
`Watcher` hooks; lifecycle never reads their state.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Protocol

from unified_system.core import policy
from unified_system.core.breaker import Breaker
from unified_system.core.events import Exited
from unified_system.core.ports import Effects, SpawnError
from unified_system.core.reasons import Reason
from unified_system.core.rollout import Rollouts
from unified_system.core.states import State
from unified_system.core.table import Services
from unified_system.core.timers import TimerHeap
from unified_system.core.unit import Unit

S = State
LINGER_CHECK = 0.02  # no kernel event says "this process group is now empty"; check briefly,
LINGER_MAX = 0.32    # then less often (each look scans /proc)
LEFTOVER_WAIT = 5.0  # SIGKILLed members are gone in far less


@dataclass(frozen=True)
class Ended:
    """How an incarnation ended, for the watchers (vitals writes the crash record)."""
    status: policy.ExitStatus
    reason: Reason
    uptime: float
    pid: int | None
    classification: str


class Watcher(Protocol):
    def spawned(self, unit: Unit) -> None: ...
    def ready(self, unit: Unit) -> None: ...
    def exited(self, unit: Unit, ended: Ended) -> None: ...


class Lifecycle:
    def __init__(self, table: Services, timers: TimerHeap, effects: Effects,
                 clock: Callable[[], float], log: Any, rand: random.Random | None = None) -> None:
        self.table, self.timers, self.effects, self.clock, self.log = table, timers, effects, clock, log
        self.breaker = Breaker(table, timers, clock, log, rand)
        self.rollouts = Rollouts(table, timers, clock, log, self.stop)
        self.watchers: list[Watcher] = []   # probing and vitals, added by the owner

    # ------------------------------------------------------------------ spawning
    def spawn(self, unit: Unit) -> None:
        now = self.clock()
        inc = next(self.table.numbers)
        try:
            spawned = self.effects.spawn(unit, inc)
        except (SpawnError, OSError) as exc:  # OSError: the checkpoint dir, the log, the sockets
            if policy.scarce(exc):
                self.breaker.scarce(unit, now, exc)
                return
            unit.last_exit = {"code": 127, "signal": None, "reason": "crash", "at": time.time()}
            self.table.transition(unit, S.FATAL, "crash", note=str(exc))
            return
        unit.scarce_tries = 0
        restarted = unit.ever_spawned
        if restarted:
            unit.restarts += 1
        unit.ever_spawned = True
        unit.inc, unit.pid, unit.pgid, unit.run_spec = inc, spawned.pid, spawned.pgid, unit.spec
        unit.spawned_at, unit.spawned_wall = now, time.time()
        unit.ready, unit.health, unit.status_text = False, "unknown", None
        unit.stop_reason, unit.probes = None, {}
        unit.last_heartbeat, unit.freezing, unit.freeze_report, unit.rss = None, False, None, None
        self.table.incarnate(unit, inc, spawned.pid)
        self.table.transition(unit, S.STARTING, None)
        if restarted:
            # a rollout's new incarnation shows the old one's last exit; its reason is the roll's
            reason = (unit.roll_reason if unit.predecessor is not None else None) \
                or (unit.last_exit or {}).get("reason") or "crash"
            self.effects.metrics.restart(unit.service, reason)
            self.table.publish({"type": "restart", "service": unit.service, "instance": unit.index,
                                "reason": reason, "restarts": unit.restarts, "pid": unit.pid})
            self._cascade_restart(unit.service)
        spec = unit.spec
        unit.timers["reset"] = self.timers.call_at(now + spec.restart.reset_after,
                                                   lambda: self.breaker.stayed_up(unit, inc))
        for watcher in self.watchers:
            watcher.spawned(unit)
        if spec.readiness is None:
            self.became_ready(unit)

    def became_ready(self, unit: Unit) -> None:
        unit.ready, unit.health = True, "healthy"
        self.table.dirty = self.table.reconcile_due = True
        if unit.state is S.STARTING:
            self.table.transition(unit, S.RUNNING, None)
        for watcher in self.watchers:
            watcher.ready(unit)
        if unit.predecessor is not None:
            self.rollouts.prove(unit)   # the old one is signalled once this one is proven

    def _cascade_restart(self, name: str) -> None:
        """depends_on {x: {restart: true}}: when x restarts, its dependents follow (rest_for_one)."""
        for dependent in self.table.dependents.get(name, ()):
            dep = self.table.config.services[dependent].depends_on[name]
            if dep.restart:
                for unit in self.table.units[dependent]:
                    if unit.state in (S.STARTING, S.RUNNING):
                        self.restart(unit, Reason.DEPENDENCY)

    # ------------------------------------------------------------------ stopping
    def stop(self, unit: Unit, reason: Reason, sig: signal.Signals | None | EllipsisType = ...,
             grace: float | None = None) -> None:
        """Signal the group (or not: sig=None when the caller already did), then SIGKILL later."""
        if unit.pid is None or unit.pgid is None or unit.state is S.STOPPING:
            return
        unit.stop_reason = reason
        self.effects.forget_probes(unit.inc)
        unit.cancel_timer("hb")
        if sig is ...:
            sig = signal.Signals[unit.spec.stop.signal]
        if sig is not None:
            self.effects.signal_group(unit.pgid, sig)
        self.table.transition(unit, S.STOPPING, reason, signal=sig.name if sig else None)
        inc = unit.inc
        grace = unit.spec.stop.timeout if grace is None else grace
        unit.timers["kill"] = self.timers.call_at(self.clock() + grace, lambda: self.kill(unit, inc))

    def restart(self, unit: Unit, reason: Reason) -> None:
        """Stop and start again. A failing process (liveness, memory, notify) is replaced the
        plain way, through backoff and the circuit breaker; only planned restarts roll, and
        only a service that holds sockets or runs several instances."""
        if unit.pid is None:
            return
        if ((unit.spec.listen or unit.spec.instances > 1) and reason.planned
                and not self.table.shutting_down):
            self.rollouts.roll(unit, reason)
            return
        unit.then_start = True
        self.stop(unit, reason)

    def kill(self, unit: Unit, inc: int) -> None:
        pgid = unit.pgid if unit.inc == inc else unit.lingering_pgid
        if pgid is not None:
            self.log.warning("stop timeout, killing group", service=unit.service, pgid=pgid,
                             timeout=unit.spec.stop.timeout)
            self.effects.signal_group(pgid, signal.SIGKILL)

    def kill_leftovers(self, pgid: int) -> None:
        """SIGKILL what a dead leader left in its group, then look until the group is empty,
        so the guard forgets its number before the kernel can give it to someone else."""
        self.effects.signal_group(pgid, signal.SIGKILL)
        self._until_empty(pgid, LINGER_CHECK, self.clock() + LEFTOVER_WAIT)

    def _until_empty(self, pgid: int, delay: float, give_up: float) -> None:
        if self.clock() < give_up and self.effects.group_alive(pgid):  # it forgets when empty
            self.timers.call_at(self.clock() + delay, lambda: self._until_empty(
                pgid, min(delay * 2, LINGER_MAX), give_up))

    def _check_linger(self, unit: Unit, delay: float = LINGER_CHECK) -> None:
        pgid = unit.lingering_pgid
        if pgid is not None and self.effects.group_alive(pgid):
            unit.timers["linger"] = self.timers.call_at(
                self.clock() + delay, lambda: self._check_linger(unit, min(delay * 2, LINGER_MAX)))
            return
        unit.lingering_pgid = None
        unit.cancel_timers()
        self._after_stop(unit)

    # ------------------------------------------------------------------ exits
    def on_exit(self, ev: Exited) -> None:
        unit = self.table.bury(ev.inc)
        self.effects.forget_probes(ev.inc)   # stopped already, unless it died by itself
        if unit is None:
            return  # a late exit of an older incarnation never touches its replacement
        now = self.clock()
        uptime = now - (unit.spawned_at or now)
        reason = unit.stop_reason or Reason.CRASH
        limit = unit.spec.limits.max_memory if unit.spec.limits else None
        classification = policy.classify_exit(ev.status, requested=reason is not Reason.CRASH,
                                              rss=unit.rss, limit=limit)
        unit.last_exit = {"code": ev.status.code, "signal": ev.status.signal_name,
                          "reason": reason, "at": time.time(), "description": classification}
        unit.exits.append({**unit.last_exit, "uptime_seconds": round(uptime, 3)})
        level = reason.log_level(ev.status.ok)
        getattr(self.log, level)("exited", service=unit.service, pid=unit.pid, reason=reason,
                                 code=ev.status.code, signal=ev.status.signal_name,
                                 uptime=round(uptime, 3), description=classification)
        ended = Ended(ev.status, reason, uptime, unit.pid, classification)
        for watcher in self.watchers:
            watcher.exited(unit, ended)
        unit.last_uptime = uptime
        respawn = unit.then_start and unit.desired_up and not self.table.shutting_down
        if unit.handed_to is not None:   # a rollout's old incarnation: the service shows its exit
            unit.handed_to.last_exit = unit.last_exit
            unit.handed_to.exits.append(unit.exits[-1])
            unit.handed_to = None
        if unit.predecessor is not None and not respawn:  # the new incarnation of a roll ended
            if unit.stop_reason is None:   # on its own: the rollout failed
                self.rollouts.abort(unit, f"exited ({classification}) before it was proven", unit.last_exit)
            else:                          # stopped (shutdown, an operator's stop): no failure
                self.rollouts.end(unit)
        elif unit.successor is not None:   # the old one died while its successor was starting
            unit.successor.predecessor, unit.successor = None, None
            unit.retiring, unit.desired_up, self.table.retiring = True, False, True
        pgid = unit.pgid
        unit.inc, unit.pid, unit.ready, unit.freezing = 0, None, False, False
        unit.cancel_timers()
        if pgid is not None and self.effects.group_alive(pgid):
            if unit.state is S.STOPPING:
                unit.lingering_pgid = pgid   # the stop signal reached them; give them the timeout
                unit.timers["kill"] = self.timers.call_at(
                    unit.since + unit.spec.stop.timeout, lambda: self.kill(unit, -1))
                self._check_linger(unit)
                return
            # The leader died on its own: what it left in its group belongs to the dead incarnation.
            self.kill_leftovers(pgid)
        if unit.state is S.STOPPING:
            self._after_stop(unit)
        else:
            self._after_crash(unit, ev.status, uptime, now)

    def _after_stop(self, unit: Unit) -> None:
        if self.table.shutting_down:
            unit.desired_up = False
        if unit.desired_up and unit.then_start:
            unit.then_start = False
            reason = Reason.of((unit.last_exit or {}).get("reason"), Reason.CRASH)
            if reason is not None and reason.planned:
                self.table.transition(unit, S.PENDING, reason)
            else:  # liveness, freeze, memory, notify: failures, so they back off
                self.breaker.failed(unit, self.clock(), unit.last_uptime, reason or Reason.CRASH)
        elif unit.desired_up:
            self.table.transition(unit, S.PENDING, "restart")
        else:
            self.table.transition(unit, S.STOPPED, (unit.last_exit or {}).get("reason"))

    def _after_crash(self, unit: Unit, status: policy.ExitStatus, uptime: float, now: float) -> None:
        if not unit.desired_up or self.table.shutting_down:
            self.table.transition(unit, S.STOPPED, "stop")
        elif status.code in policy.NOT_STARTABLE:
            what = "not executable" if status.code == 126 else "command not found"
            said = self.effects.explain_not_startable(unit)  # rare path: small reads are fine
            self.table.transition(unit, S.FATAL, "crash", note=f"exit {status.code}: {what}; not retried"
                                  + (f" ({said})" if said else ""))
        elif policy.should_restart(unit.spec.restart.policy, status):
            self.breaker.failed(unit, now, uptime, "crash")
        else:
            self.table.transition(unit, S.EXITED, "crash", code=status.code)

