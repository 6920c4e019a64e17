"""Vitals, a collaborator of the owner: heartbeats and freezes, memory limits, crash records.

(Was core/watchdog.py, a mixin; renamed so it is not taken for the `watchdog` file-watching
library.) Constructed with the incarnation map, the timers, `Effects` and the clock; what it
asks of the rest of the owner (restart, stop, publish) goes through `VitalHooks`. Anything
slow (reading /proc at length, py-spy, writing dumps) goes to the dump worker, which reports
back with an event.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from unified_system.core.events import FreezeProven, HostAlert, Samples
from unified_system.core.lifecycle import Ended
from unified_system.core.policy import HEARTBEAT_HOLD
from unified_system.core.ports import Effects
from unified_system.core.reasons import Reason
from unified_system.core.states import State
from unified_system.core.timers import TimerHeap
from unified_system.core.unit import Unit

S = State
FREEZE_GRACE = 1.0      # after SIGABRT, how long a frozen process may take to dump before SIGKILL
# Heartbeat deadlines are checked on this grid: 100 services' checks fall due together and
# are one owner turn, not one each. A check also waits out HEARTBEAT_HOLD, the longest the
# listener may hold a heartbeat back: a beat on time must never read as a freeze. So a
# freeze is declared at most HEARTBEAT_HOLD + HB_GRID (0.2 s) after its timeout.
HB_GRID = 0.1


def on_grid(at: float) -> float:
    return math.ceil((at + HEARTBEAT_HOLD) / HB_GRID) * HB_GRID


@dataclass(frozen=True)
class VitalHooks:
    """What vitals may ask of the owner's other concerns."""
    post: Callable[[object], None]                   # the owner's door (from the dump worker)
    restart: Callable[[Unit, Reason], None]          # commands (plain or rolling)
    stop: Callable[..., None]                        # lifecycle: (unit, reason, sig=, grace=)
    publish: Callable[[dict[str, Any]], None]        # an event for the observers
    changed: Callable[[], None]                      # the published snapshot is stale
    stale_soon: Callable[[], None]                   # ... and may be up to a second late
    after_turn: Callable[[Callable[[], None]], None]  # run once the turn's spawns are done


class Vitals:
    def __init__(self, by_inc: Mapping[int, Unit], timers: TimerHeap, effects: Effects,
                 clock: Callable[[], float], log: Any, hooks: VitalHooks) -> None:
        self.by_inc, self.timers, self.effects, self.clock = by_inc, timers, effects, clock
        self.log, self.hooks = log, hooks
        self.mem_watch: dict[int, int] = {}   # incarnation -> pid, for the sampler; replaced whole

    # ------------------------------------------------------------------ heartbeats
    def heartbeat(self, unit: Unit, extend: float = 0.0, at: float | None = None) -> None:
        hb = unit.spec.heartbeat
        if hb is None:
            return
        now = at if at is not None else self.clock()  # the listener's arrival stamp, when known
        # EXTEND_TIMEOUT_USEC moves the deadline out without counting as a heartbeat of record.
        unit.last_heartbeat = max(unit.last_heartbeat or now, now + extend - hb.timeout) if extend else now
        unit.heartbeat_wall = time.time()
        self.hooks.stale_soon()  # observers compute the age at read time: a stamp <= 1 s old will do
        if unit.health == "frozen" and not unit.freezing:
            unit.health = "healthy" if unit.ready else "unknown"
            self.hooks.changed()
            self.log.info("heartbeat resumed: freeze cleared", service=unit.service, pid=unit.pid)
            self.hooks.publish({"type": "freeze", "service": unit.service, "kind": "cleared"})
        self.arm_heartbeat(unit)

    def arm_heartbeat(self, unit: Unit) -> None:
        hb = unit.spec.heartbeat
        if hb is None or unit.freezing or "hb" in unit.timers or not unit.inc:
            return
        if unit.last_heartbeat is None:
            unit.last_heartbeat = self.clock()
        inc = unit.inc
        # One timer per unit, re-armed when it fires: a heartbeat costs O(1), not a heap push.
        unit.timers["hb"] = self.timers.call_at(on_grid(unit.last_heartbeat + hb.timeout),
                                                 lambda: self._check_heartbeat(unit, inc))

    def _check_heartbeat(self, unit: Unit, inc: int) -> None:
        unit.timers.pop("hb", None)
        hb, pid, last = unit.spec.heartbeat, unit.pid, unit.last_heartbeat
        if (unit.inc != inc or unit.freezing or unit.state not in (S.STARTING, S.RUNNING)
                or hb is None or pid is None or last is None):  # hb None: a reload removed it
            return
        now = self.clock()
        silence = now - last
        if hb.hard_timeout is not None and silence >= hb.hard_timeout:
            self._hard_freeze(unit, pid, f"no heartbeat for {silence:.2f}s (hard_timeout {hb.hard_timeout:g}s)")
            return
        if silence >= hb.timeout:
            if self.effects.process_state(pid) == "T":
                self._hard_freeze(unit, pid, f"process is stopped (state T) and a heartbeat is {silence:.2f}s late")
                return
            if unit.health != "frozen":
                unit.health, unit.cpu_at_silence = "frozen", self.effects.cpu_seconds(pid)
                self.hooks.changed()
                self.log.warning("soft freeze: no heartbeat", service=unit.service, pid=unit.pid,
                                 silence=round(silence, 3), timeout=hb.timeout)
                self.effects.metrics.freeze(unit.service, "soft")
                self.hooks.publish({"type": "freeze", "service": unit.service, "kind": "soft",
                               "silence": round(silence, 3)})
            # Keep looking: for the hard deadline, and for a process that gets stopped meanwhile.
            nxt = last + hb.hard_timeout if hb.hard_timeout else now + hb.timeout
            nxt = min(nxt, now + hb.timeout)
        else:
            nxt = last + hb.timeout
        unit.timers["hb"] = self.timers.call_at(on_grid(nxt), lambda: self._check_heartbeat(unit, inc))

    def _hard_freeze(self, unit: Unit, pid: int, why: str) -> None:
        unit.freezing, unit.health = True, "frozen"
        self.hooks.changed()
        self.log.error("hard freeze", service=unit.service, pid=unit.pid, why=why)
        self.effects.metrics.freeze(unit.service, "hard")
        self.hooks.publish({"type": "freeze", "service": unit.service, "kind": "hard", "why": why})
        inc, cpu, post, effects = unit.inc, unit.cpu_at_silence, self.hooks.post, self.effects

        def prove() -> None:  # on the dump worker: prove the freeze before anything is killed
            try:
                report = effects.inspect_frozen(pid, cpu)
            except Exception as exc:  # the evidence is best effort; the kill must still happen
                report = {"error": f"inspection failed: {type(exc).__name__}: {exc}"}
            report["why"] = why
            post(FreezeProven(inc, report))

        self.effects.crash_dumps.submit(prove)

    def on_freeze_proven(self, ev: FreezeProven) -> None:
        unit = self.by_inc.get(ev.inc)
        if unit is None or unit.state not in (S.STARTING, S.RUNNING):
            return
        unit.freeze_report = ev.report
        self.log.error("freeze proven; SIGABRT then SIGKILL", service=unit.service, pid=unit.pid,
                       verdict=ev.report.get("verdict"))
        if unit.pid is None or unit.pgid is None:
            return
        unit.then_start = True
        self.effects.signal_pid(unit.pid, signal.SIGABRT)  # a diagnostic signal first: many runtimes dump on it
        self.effects.signal_group(unit.pgid, signal.SIGCONT)  # a stopped process must run to die
        self.hooks.stop(unit, Reason.FREEZE, sig=None, grace=min(FREEZE_GRACE, unit.spec.stop.timeout))

    # ------------------------------------------------------------------ memory and host
    def on_samples(self, ev: Samples) -> None:
        for inc, rss in ev.readings:
            unit = self.by_inc.get(inc)
            if unit is None or rss is None:
                continue
            unit.rss = rss
            limit = unit.spec.limits.max_memory if unit.spec.limits else None
            if limit and rss > limit and unit.state in (S.STARTING, S.RUNNING):
                self.log.warning("memory limit exceeded: graceful restart", service=unit.service,
                                 pid=unit.pid, rss_bytes=rss, max_memory=limit)
                self.hooks.restart(unit, Reason.MEMORY)

    def on_host_alert(self, ev: HostAlert) -> None:
        self.log.warning("host resource above 80%", what=ev.what, percent=ev.percent)
        self.hooks.publish({"type": "host", "service": None, "what": ev.what, "percent": ev.percent})

    def watch_memory(self, unit: Unit) -> None:
        """At a spawn and an exit: the sampler's map, replaced whole."""
        watched = {i: p for i, p in self.mem_watch.items() if i in self.by_inc}
        if unit.spec.limits is not None and unit.spec.limits.max_memory and unit.pid \
                and self.by_inc.get(unit.inc) is unit:
            watched[unit.inc] = unit.pid
        self.mem_watch = watched

    # ------------------------------------------------------------------ lifecycle's hooks
    def spawned(self, unit: Unit) -> None:
        self.watch_memory(unit)

    def ready(self, unit: Unit) -> None:
        self.arm_heartbeat(unit)   # the heartbeat deadline starts at readiness at the latest

    def exited(self, unit: Unit, ended: Ended) -> None:
        self.watch_memory(unit)
        self._crash_dump(unit, ended)

    def _crash_dump(self, unit: Unit, ended: Ended) -> None:
        if not ended.reason.dumps:
            return
        status = ended.status
        record: dict[str, Any] = {
            "service": unit.service, "instance": unit.index, "pid": ended.pid, "at": time.time(),
            "reason": ended.reason, "classification": ended.classification,
            "exit": {"code": status.code, "signal": status.signal_name},
            "uptime_seconds": round(ended.uptime, 3), "restarts": unit.restarts,
            "resources": {"rss_bytes": unit.rss, "cpu_percent": None, "threads": None,
                          "status": "exited"},
        }
        if unit.freeze_report is not None:
            record["freeze"] = unit.freeze_report
            record["resources"] = unit.freeze_report.get("resources", record["resources"])
        # After this turn's spawns: the writer thread must not hold the GIL while we restart.
        dumps = self.effects.crash_dumps
        self.hooks.after_turn(lambda: dumps.write(record))
