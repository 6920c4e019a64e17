"""Probe results and sd_notify messages, as a collaborator of the owner.

Constructed with the incarnation map, the timers, the `Effects` port and the clock. What it
must ask of the rest of the owner (a unit became ready, restart it, a heartbeat) goes
through `ProbeHooks`; it never reaches into lifecycle's or the watchdog's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from unified_system import logsetup
from unified_system.core.events import Notify, NotifyRefused, ProbeResult
from unified_system.core.lifecycle import Ended
from unified_system.core.policy import MAX_EXTEND, usec_seconds
from unified_system.core.ports import Effects
from unified_system.core.reasons import Reason
from unified_system.core.states import State
from unified_system.core.timers import TimerHeap
from unified_system.core.unit import ProbeTrack, Unit

S = State
HEARTBEAT = (("WATCHDOG", "1"),)   # a bare WATCHDOG=1, as the listener passes it


@dataclass(frozen=True)
class ProbeHooks:
    """What probing may ask of the owner's other concerns."""
    became_ready: Callable[[Unit], None]            # lifecycle
    abort_rollout: Callable[[Unit, str], None]      # rollout: a new incarnation failed
    restart: Callable[[Unit, Reason], None]         # commands (plain or rolling)
    kill: Callable[[Unit, int], None]               # lifecycle: SIGKILL this incarnation
    heartbeat: Callable[..., None]                  # watchdog: (unit, extend=, at=)
    publish: Callable[[dict[str, Any]], None]       # an event for the observers
    changed: Callable[[], None]                     # the published snapshot is stale


class Probing:
    def __init__(self, by_inc: Mapping[int, Unit], timers: TimerHeap, effects: Effects,
                 clock: Callable[[], float], log: Any, hooks: ProbeHooks) -> None:
        self.by_inc, self.timers, self.effects, self.clock = by_inc, timers, effects, clock
        self.log, self.hooks = log, hooks

    def spawned(self, unit: Unit) -> None:
        """Lifecycle's hook: a new incarnation runs; the prober takes its probes over. Their
        attempts repeat on the prober's thread (probes/plans.py), not on owner timers: with
        100 services probed twice a second, a timer and a hand-off per attempt were most of
        the owner's work."""
        spec = unit.spec
        if spec.readiness is not None and spec.readiness.kind != "notify":
            self.effects.watch_probe(unit, "readiness", spec.readiness, spec.readiness.initial_delay)
        if spec.startup is not None:
            self.effects.watch_probe(unit, "startup", spec.startup, spec.startup.initial_delay)
        elif spec.liveness is not None:
            self.effects.watch_probe(unit, "liveness", spec.liveness, spec.liveness.initial_delay)

    def ready(self, unit: Unit) -> None: ...

    def exited(self, unit: Unit, ended: Ended) -> None: ...   # lifecycle forgets its probes

    def on_probe(self, ev: ProbeResult) -> None:
        unit = self.by_inc.get(ev.inc)
        if unit is None or unit.state not in (S.STARTING, S.RUNNING):
            return
        hooks, role = self.hooks, ev.role
        # The incarnation's own definition: during a rolling reload the old one runs (and is
        # probed by) the definition it started with, while unit.spec already names the new.
        spec = unit.run_spec or unit.spec
        probe = getattr(spec, role)
        track = unit.probes.setdefault(role, ProbeTrack())
        if probe is None or track.passed_once:
            return   # a result in flight when its probe was handed over or reloaded away
        if ev.ok:
            track.successes, track.failures = track.successes + 1, 0
        else:
            track.successes, track.failures = 0, track.failures + 1
        if track.last_ok is not ev.ok:
            hooks.publish({"type": "probe", "service": unit.service, "probe": role,
                           "ok": ev.ok, "detail": ev.detail})
        track.last_ok, track.detail = ev.ok, ev.detail
        self.effects.metrics.probe(unit.service, role, ev.duration)
        if role == "readiness":
            if ev.ok and track.successes >= probe.success_threshold and not unit.ready:
                hooks.became_ready(unit)
            elif not ev.ok and track.failures >= probe.failure_threshold and unit.ready:
                unit.ready, unit.health = False, "unhealthy"
                hooks.changed()
                if unit.predecessor is not None:   # a rollout's new incarnation, not yet proven
                    self.effects.forget_probes(unit.inc, role)
                    hooks.abort_rollout(unit, f"failed its readiness probe ({ev.detail})")
        elif not ev.ok and track.failures >= probe.failure_threshold:
            self.log.warning("probe failed", service=unit.service, probe=role, detail=ev.detail)
            # Probed no more: a rolling restart keeps this process up until its successor
            # is ready, and its next failures must not restart it again.
            self.effects.forget_probes(unit.inc, role)
            hooks.restart(unit, Reason.LIVENESS)
        elif ev.ok and role == "startup":
            # A startup probe runs until it first passes, then hands over to liveness.
            track.passed_once = True
            self.effects.forget_probes(unit.inc, "startup")
            if spec.liveness is not None:
                self.effects.watch_probe(unit, "liveness", spec.liveness, spec.liveness.initial_delay)

    def on_notify(self, ev: Notify) -> None:
        unit = self.by_inc.get(ev.inc)
        if unit is None:
            return
        hooks = self.hooks
        if ev.fields == HEARTBEAT:   # nearly all the traffic: no parsing, one call
            hooks.heartbeat(unit, at=ev.at)
            return
        fields = dict(ev.fields)
        if "STATUS" in fields:
            # Redacted before it is cut: a secret cut in two would match nowhere later.
            unit.status_text = logsetup.hidden().text(fields["STATUS"])[:200]
            hooks.changed()
        if fields.get("READY") == "1":
            readiness = unit.spec.readiness
            if readiness is not None and readiness.kind == "notify" and not unit.ready:
                hooks.became_ready(unit)
        if fields.get("WATCHDOG") == "1":
            hooks.heartbeat(unit, at=ev.at)
        if "EXTEND_TIMEOUT_USEC" in fields:
            self._extend(unit, fields["EXTEND_TIMEOUT_USEC"])
        if fields.get("STOPPING") == "1":
            unit.note = "the service said it is stopping"
            hooks.changed()
        if fields.get("RELOADING") == "1" and unit.spec.readiness and unit.spec.readiness.kind == "notify":
            unit.ready = False  # systemd semantics: not ready until READY=1 again
            hooks.changed()
        if fields.get("WATCHDOG") == "trigger":
            self.log.warning("service asked to be restarted (WATCHDOG=trigger)", service=unit.service)
            hooks.restart(unit, Reason.NOTIFY)

    def on_refused(self, ev: NotifyRefused) -> None:
        self.log.warning("notify datagram refused: its sender is in no service's process tree",
                         pid=ev.pid, keys=list(ev.keys),
                         note="later refused senders are not logged" if ev.last else None)

    def _extend(self, unit: Unit, usec: str) -> None:
        # Clamped: a child's 1e17 once put a timer past what queue.get can wait for.
        extra = usec_seconds(usec, MAX_EXTEND)
        if extra is None:
            return
        if unit.state is S.STOPPING and "kill" in unit.timers:
            inc = unit.inc
            unit.cancel_timer("kill")
            kill = self.hooks.kill
            unit.timers["kill"] = self.timers.call_at(self.clock() + extra, lambda: kill(unit, inc))
        else:
            self.hooks.heartbeat(unit, extend=extra)
