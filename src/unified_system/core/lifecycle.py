"""Spawning, stopping and exits, as an owner mixin: the life of one incarnation, and what
follows its end (backoff, the circuit breaker, restarts of dependents)."""

from __future__ import annotations

import signal
import time
from types import EllipsisType

from unified_system.core import policy
from unified_system.core.events import Exited
from unified_system.core.owner import Owner
from unified_system.core.ports import SpawnError
from unified_system.core.reasons import Reason
from unified_system.core.states import State
from unified_system.core.unit import Unit

S = State
LINGER_CHECK = 0.02  # no kernel event says "this process group is now empty"; check briefly,
LINGER_MAX = 0.32    # then less often (each look scans /proc)
LEFTOVER_WAIT = 5.0  # SIGKILLed members are gone in far less


class LifecycleMixin(Owner):
    # ------------------------------------------------------------------ spawning
    def _spawn(self, unit: Unit) -> None:
        now = self.clock()
        inc = next(self._incs)
        try:
            spawned = self.runtime.spawn(unit, inc)
        except (SpawnError, OSError) as exc:  # OSError: the checkpoint dir, the log, the sockets
            if policy.scarce(exc):
                self._spawn_later(unit, now, exc)
                return
            unit.last_exit = {"code": 127, "signal": None, "reason": "crash", "at": time.time()}
            self._transition(unit, S.FATAL, "crash", note=str(exc))
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
        self._by_inc[inc] = unit
        self._pid_map = {**self._pid_map, spawned.pid: inc}
        self.vitals.watch_memory(unit)
        self._transition(unit, S.STARTING, None)
        if restarted:
            # a rollout's new incarnation shows the old one's last exit; its reason is the roll's
            reason = (unit.roll_reason if unit.predecessor is not None else None) \
                or (unit.last_exit or {}).get("reason") or "crash"
            self.runtime.metrics.restart(unit.service, reason)
            self._publish({"type": "restart", "service": unit.service, "instance": unit.index,
                           "reason": reason, "restarts": unit.restarts, "pid": unit.pid})
            self._cascade_restart(unit.service)
        spec = unit.spec
        unit.timers["reset"] = self._timers.call_at(now + spec.restart.reset_after,
                                                    lambda: self._stayed_up(unit, inc))
        if spec.readiness is None:
            self._became_ready(unit)
        self.probing.spawned(unit)

    def _spawn_later(self, unit: Unit, now: float, exc: BaseException) -> None:
        """EMFILE, ENFILE, EAGAIN or ENOMEM: the program is not at fault, so no exit code, no
        failure against the circuit's budget; retried on a short back-off of its own, as the
        flood that took the descriptors may end at any moment."""
        unit.scarce_tries += 1
        first, longest = policy.SCARCE_BACKOFF
        delay = policy.next_delay(unit.scarce_tries, first, longest, 2.0, 0.1, self._rand.random())
        self._transition(unit, S.BACKOFF, "resources", note=f"{exc}; retrying",
                         delay=round(delay, 3))
        unit.timers["backoff"] = self._timers.call_at(now + delay, lambda: self._backoff_over(unit))

    def _became_ready(self, unit: Unit) -> None:
        unit.ready, unit.health, self._dirty, self._reconcile_due = True, "healthy", True, True
        if unit.state is S.STARTING:
            self._transition(unit, S.RUNNING, None)
        self.vitals.arm_heartbeat(unit)  # the heartbeat deadline starts at readiness at the latest
        if unit.predecessor is not None:
            self._prove(unit)   # rollout.py: the old one is signalled once this one is proven

    def _cascade_restart(self, name: str) -> None:
        """depends_on {x: {restart: true}}: when x restarts, its dependents follow (rest_for_one)."""
        for dependent in self._dependents.get(name, ()):
            dep = self.config.services[dependent].depends_on[name]
            if dep.restart:
                for unit in self.units[dependent]:
                    if unit.state in (S.STARTING, S.RUNNING):
                        self._restart(unit, Reason.DEPENDENCY)

    def _stayed_up(self, unit: Unit, inc: int) -> None:
        if unit.inc == inc:
            unit.failures = 0
            if unit.circuit != "closed":
                unit.circuit = "closed"
                self.log.info("circuit closed", service=unit.service)
                self._publish({"type": "recovered", "service": unit.service})

    # ------------------------------------------------------------------ stopping
    def _stop(self, unit: Unit, reason: Reason, sig: signal.Signals | None | EllipsisType = ...,
              grace: float | None = None) -> None:
        """Signal the group (or not: sig=None when the caller already did), then SIGKILL later."""
        if unit.pid is None or unit.pgid is None or unit.state is S.STOPPING:
            return
        unit.stop_reason = reason
        unit.cancel_timers("probe:")
        unit.cancel_timer("hb")
        if sig is ...:
            sig = signal.Signals[unit.spec.stop.signal]
        if sig is not None:
            self.runtime.signal_group(unit.pgid, sig)
        self._transition(unit, S.STOPPING, reason, signal=sig.name if sig else None)
        inc = unit.inc
        grace = unit.spec.stop.timeout if grace is None else grace
        unit.timers["kill"] = self._timers.call_at(self.clock() + grace, lambda: self._kill(unit, inc))

    def _kill(self, unit: Unit, inc: int) -> None:
        pgid = unit.pgid if unit.inc == inc else unit.lingering_pgid
        if pgid is not None:
            self.log.warning("stop timeout, killing group", service=unit.service, pgid=pgid,
                             timeout=unit.spec.stop.timeout)
            self.runtime.signal_group(pgid, signal.SIGKILL)

    def _kill_leftovers(self, pgid: int) -> None:
        """SIGKILL what a dead leader left in its group, then look until the group is empty,
        so the guard forgets its number before the kernel can give it to someone else."""
        self.runtime.signal_group(pgid, signal.SIGKILL)
        self._until_empty(pgid, LINGER_CHECK, self.clock() + LEFTOVER_WAIT)

    def _until_empty(self, pgid: int, delay: float, give_up: float) -> None:
        if self.clock() < give_up and self.runtime.group_alive(pgid):  # it forgets when empty
            self._timers.call_at(self.clock() + delay, lambda: self._until_empty(
                pgid, min(delay * 2, LINGER_MAX), give_up))

    def _check_linger(self, unit: Unit, delay: float = LINGER_CHECK) -> None:
        pgid = unit.lingering_pgid
        if pgid is not None and self.runtime.group_alive(pgid):
            unit.timers["linger"] = self._timers.call_at(
                self.clock() + delay, lambda: self._check_linger(unit, min(delay * 2, LINGER_MAX)))
            return
        unit.lingering_pgid = None
        unit.cancel_timers()
        self._after_stop(unit)

    # ------------------------------------------------------------------ exits
    def _on_exit(self, ev: Exited) -> None:
        unit = self._by_inc.pop(ev.inc, None)
        if unit is None or unit.inc != ev.inc:
            return  # a late exit of an older incarnation never touches its replacement
        now = self.clock()
        self._pid_map = {p: i for p, i in self._pid_map.items() if i != ev.inc}
        uptime = now - (unit.spawned_at or now)
        reason = unit.stop_reason or Reason.CRASH
        classification = self.vitals.classify(unit, ev.status, reason)
        unit.last_exit = {"code": ev.status.code, "signal": ev.status.signal_name,
                          "reason": reason, "at": time.time(), "description": classification}
        unit.exits.append({**unit.last_exit, "uptime_seconds": round(uptime, 3)})
        level = reason.log_level(ev.status.ok)
        getattr(self.log, level)("exited", service=unit.service, pid=unit.pid, reason=reason,
                                 code=ev.status.code, signal=ev.status.signal_name,
                                 uptime=round(uptime, 3), description=classification)
        self.vitals.crash_dump(unit, ev.status, reason, uptime, unit.pid, classification)
        unit.last_uptime = uptime
        respawn = unit.then_start and unit.desired_up and not self._shutting_down
        if unit.handed_to is not None:   # a rollout's old incarnation: the service shows its exit
            unit.handed_to.last_exit = unit.last_exit
            unit.handed_to.exits.append(unit.exits[-1])
            unit.handed_to = None
        if unit.predecessor is not None and not respawn:  # the new incarnation of a roll ended
            if unit.stop_reason is None:   # on its own: the rollout failed
                self._abort_rollout(unit, f"exited ({classification}) before it was proven", unit.last_exit)
            else:                          # stopped (shutdown, an operator's stop): no failure
                self._end_rollout(unit)
        elif unit.successor is not None:   # the old one died while its successor was starting
            unit.successor.predecessor, unit.successor = None, None
            unit.retiring, unit.desired_up, self._retiring = True, False, True
        pgid = unit.pgid
        unit.inc, unit.pid, unit.ready, unit.freezing = 0, None, False, False
        self.vitals.watch_memory(unit)
        unit.cancel_timers()
        if pgid is not None and self.runtime.group_alive(pgid):
            if unit.state is S.STOPPING:
                unit.lingering_pgid = pgid   # the stop signal reached them; give them the timeout
                unit.timers["kill"] = self._timers.call_at(
                    unit.since + unit.spec.stop.timeout, lambda: self._kill(unit, -1))
                self._check_linger(unit)
                return
            # The leader died on its own: what it left in its group belongs to the dead incarnation.
            self._kill_leftovers(pgid)
        if unit.state is S.STOPPING:
            self._after_stop(unit)
        else:
            self._after_crash(unit, ev.status, uptime, now)

    def _after_stop(self, unit: Unit) -> None:
        if self._shutting_down:
            unit.desired_up = False
        if unit.desired_up and unit.then_start:
            unit.then_start = False
            reason = Reason.of((unit.last_exit or {}).get("reason"), Reason.CRASH)
            if reason is not None and reason.planned:
                self._transition(unit, S.PENDING, reason)
            else:  # liveness, freeze, memory, notify: failures, so they back off
                if unit.last_uptime >= unit.spec.restart.reset_after:
                    unit.failures = 0
                self._schedule_restart(unit, self.clock(), unit.last_uptime, reason or Reason.CRASH)
        elif unit.desired_up:
            self._transition(unit, S.PENDING, "restart")
        else:
            self._transition(unit, S.STOPPED, (unit.last_exit or {}).get("reason"))

    def _after_crash(self, unit: Unit, status: policy.ExitStatus, uptime: float, now: float) -> None:
        if not unit.desired_up or self._shutting_down:
            self._transition(unit, S.STOPPED, "stop")
        elif status.code in policy.NOT_STARTABLE:
            what = "not executable" if status.code == 126 else "command not found"
            said = self.runtime.explain_not_startable(unit)  # rare path: small reads are fine
            self._transition(unit, S.FATAL, "crash", note=f"exit {status.code}: {what}; not retried"
                             + (f" ({said})" if said else ""))
        elif policy.should_restart(unit.spec.restart.policy, status):
            if uptime >= unit.spec.restart.reset_after:
                unit.failures = 0
            self._schedule_restart(unit, now, uptime, "crash")
        else:
            self._transition(unit, S.EXITED, "crash", code=status.code)

    def _schedule_restart(self, unit: Unit, now: float, uptime: float, reason: str) -> None:
        r = unit.spec.restart
        unit.failures += 1
        # The budget counts the restarts a failure asked for; an operator's are not a crash loop.
        while unit.restart_times and now - unit.restart_times[0] >= r.window:
            unit.restart_times.popleft()  # only the window matters to the budget
        if unit.circuit == "half-open" or policy.budget_spent(
                [*unit.restart_times, now], now, r.window, r.max_restarts):
            self._open_circuit(unit, now)
            return
        unit.restart_times.append(now)
        delay = policy.next_delay(unit.failures, r.backoff.initial, r.backoff.max,
                                  r.backoff.multiplier, r.backoff.jitter, self._rand.random())
        if delay <= 0:
            self._transition(unit, S.PENDING, reason)
            return
        self._transition(unit, S.BACKOFF, reason, delay=round(delay, 3))
        unit.timers["backoff"] = self._timers.call_at(now + delay, lambda: self._backoff_over(unit))

    def _backoff_over(self, unit: Unit) -> None:
        unit.timers.pop("backoff", None)
        if unit.state is S.BACKOFF:
            self._transition(unit, S.PENDING, "backoff")

    def _open_circuit(self, unit: Unit, now: float) -> None:
        r = unit.spec.restart
        unit.circuit = "open"
        note = f"circuit open: more than {r.max_restarts} restarts within {r.window:g}s"
        self._transition(unit, S.FATAL, "circuit_open", note=note)
        self._publish({"type": "circuit_open", "service": unit.service})
        if r.cooldown is not None:
            unit.timers["cooldown"] = self._timers.call_at(now + r.cooldown, lambda: self._half_open(unit))

    def _half_open(self, unit: Unit) -> None:
        unit.timers.pop("cooldown", None)
        if unit.state is S.FATAL and unit.desired_up:
            unit.circuit = "half-open"
            self._transition(unit, S.PENDING, "half-open")
