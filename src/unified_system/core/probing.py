"""Probe results and sd_notify messages, as an owner mixin."""

from __future__ import annotations

import math

from unified_system import logsetup
from unified_system.core.events import Notify, ProbeResult
from unified_system.core.owner import Owner
from unified_system.core.policy import MAX_EXTEND, usec_seconds
from unified_system.core.reasons import Reason
from unified_system.core.states import State
from unified_system.core.unit import ProbeTrack, Unit

S = State
PROBE_GRID = 0.05


class ProbingMixin(Owner):
    # ------------------------------------------------------------------ probes and notify
    def _schedule_probe(self, unit: Unit, kind: str, delay: float) -> None:
        inc = unit.inc
        due = self.clock() + delay
        if unit.state is S.RUNNING:
            # Steady state, on a 50 ms grid: probes of many services fall due together and go
            # out in one batch. A starting service is probed on time: its dependents wait.
            due = math.ceil(due / PROBE_GRID) * PROBE_GRID
        unit.timers[f"probe:{kind}"] = self._timers.call_at(
            due, lambda: self._start_probe(unit, kind, inc))

    def _start_probe(self, unit: Unit, kind: str, inc: int) -> None:
        unit.timers.pop(f"probe:{kind}", None)
        if unit.inc == inc and unit.state in (S.STARTING, S.RUNNING):
            self.runtime.run_probe(unit, kind, getattr(unit.spec, kind))

    def _on_probe(self, ev: ProbeResult) -> None:
        unit = self._by_inc.get(ev.inc)
        if unit is None or unit.state not in (S.STARTING, S.RUNNING):
            return
        probe = getattr(unit.spec, ev.kind)
        track = unit.probes.setdefault(ev.kind, ProbeTrack())
        if ev.ok:
            track.successes, track.failures = track.successes + 1, 0
        else:
            track.successes, track.failures = 0, track.failures + 1
        if track.last_ok is not ev.ok:
            self._publish({"type": "probe", "service": unit.service, "probe": ev.kind,
                           "ok": ev.ok, "detail": ev.detail})
        track.last_ok, track.detail = ev.ok, ev.detail
        self.runtime.metrics.probe(unit.service, ev.kind, ev.duration)
        next_period = probe.period
        if ev.kind == "readiness" and unit.state is S.STARTING and probe.start_interval:
            next_period = probe.start_interval
        if ev.kind == "readiness":
            if ev.ok and track.successes >= probe.success_threshold and not unit.ready:
                self._became_ready(unit)
            elif not ev.ok and track.failures >= probe.failure_threshold and unit.ready:
                unit.ready, unit.health, self._dirty = False, "unhealthy", True
                if unit.predecessor is not None:   # a rollout's new incarnation, not yet proven
                    self._abort_rollout(unit, f"failed its readiness probe ({ev.detail})")
                    return
        elif not ev.ok and track.failures >= probe.failure_threshold:
            self.log.warning("probe failed", service=unit.service, probe=ev.kind, detail=ev.detail)
            self._restart(unit, Reason.LIVENESS)
            return
        elif ev.ok and ev.kind == "startup":
            track.passed_once = True
            if unit.spec.liveness is not None:
                self._schedule_probe(unit, "liveness", unit.spec.liveness.initial_delay)
            return  # a startup probe runs until it first passes, then hands over to liveness
        self._schedule_probe(unit, ev.kind, next_period)

    def _on_notify(self, ev: Notify) -> None:
        unit = self._by_inc.get(ev.inc)
        if unit is None:
            return
        fields = dict(ev.fields)
        if "STATUS" in fields:
            # Redacted before it is cut: a secret cut in two would match nowhere later.
            unit.status_text, self._dirty = logsetup.hidden().text(fields["STATUS"])[:200], True
        if fields.get("READY") == "1":
            readiness = unit.spec.readiness
            if readiness is not None and readiness.kind == "notify" and not unit.ready:
                self._became_ready(unit)
        if fields.get("WATCHDOG") == "1":
            self._heartbeat(unit, at=ev.at)
        if "EXTEND_TIMEOUT_USEC" in fields:
            self._extend(unit, fields["EXTEND_TIMEOUT_USEC"])
        if fields.get("STOPPING") == "1":
            unit.note, self._dirty = "the service said it is stopping", True
        if fields.get("RELOADING") == "1" and unit.spec.readiness and unit.spec.readiness.kind == "notify":
            unit.ready, self._dirty = False, True  # systemd semantics: not ready until READY=1 again
        if fields.get("WATCHDOG") == "trigger":
            self.log.warning("service asked to be restarted (WATCHDOG=trigger)", service=unit.service)
            self._restart(unit, Reason.NOTIFY)

    def _extend(self, unit: Unit, usec: str) -> None:
        # Clamped: a child's 1e17 once put a timer past what queue.get can wait for.
        extra = usec_seconds(usec, MAX_EXTEND)
        if extra is None:
            return
        if unit.state is S.STOPPING and "kill" in unit.timers:
            inc = unit.inc
            unit.cancel_timer("kill")
            unit.timers["kill"] = self._timers.call_at(self.clock() + extra, lambda: self._kill(unit, inc))
        else:
            self._heartbeat(unit, extend=extra)
