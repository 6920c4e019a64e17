"""Rolling restarts, a part of lifecycle: the new incarnation starts beside the old one (they
share the held sockets), must prove itself, and only then is the old one signalled.

Proof is readiness, then `rollout.min_ready` seconds alive and still ready (Kubernetes'
minReadySeconds). Readiness alone proves little here: on a held socket an http or tcp probe
may be answered by the OLD process (the new one was once declared ready 4 ms after its
spawn), and gunicorn sends READY=1 before its app has loaded. A new incarnation that exits,
loses readiness, or is not proven within `rollout.timeout` is stopped; the old one keeps
serving, untouched, and the service's last exit says `rollout failed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from unified_system.core.reasons import Reason
from unified_system.core.reload_diff import start_window
from unified_system.core.states import State
from unified_system.core.table import Services
from unified_system.core.timers import TimerHeap
from unified_system.core.unit import Unit

S = State
ROLLOUT_FAILED = Reason.ROLLOUT_FAILED.value   # last_exit.reason of the service whose rollout was aborted


class Rollouts:
    """A part of lifecycle. `stop` is lifecycle's; `on_failed` hears (service, why) when a
    rollout is aborted (reloading rolls a reload's changed service back)."""

    def __init__(self, table: Services, timers: TimerHeap, clock: Callable[[], float], log: Any,
                 stop: Callable[[Unit, Reason], None]) -> None:
        self.table, self.timers, self.clock, self.log, self.stop = table, timers, clock, log, stop
        self.on_failed: list[Callable[[str, str], None]] = []

    def roll(self, unit: Unit, reason: Reason) -> None:
        """Start the new incarnation beside `unit`; the next reconcile spawns it."""
        if unit.successor is not None or unit.predecessor is not None:
            return
        new = Unit(unit.service, unit.index, unit.spec)
        for attr in ("restarts", "failures", "circuit", "ever_spawned"):
            setattr(new, attr, getattr(unit, attr))
        new.restart_times.extend(unit.restart_times)
        new.exits.extend(unit.exits)
        # Until the old one exits, the last exit shown is still the real one before it.
        new.last_exit, new.roll_reason = unit.last_exit, reason
        new.predecessor, unit.successor, unit.roll_reason = unit, new, reason
        unit.handed_to = new
        self.table.units[unit.service].append(new)
        self.table.reconcile_due = self.table.dirty = True
        rollout = unit.spec.rollout
        timeout = rollout.timeout if rollout.timeout is not None else start_window(unit.spec)
        self.timers.call_at(self.clock() + timeout + rollout.min_ready,
                             lambda: self._rollout_overdue(new, unit, timeout))
        self.log.info("rolling restart: starting the new incarnation first", service=unit.service,
                      instance=unit.index, reason=reason, old_pid=unit.pid)
        self.table.publish({"type": "rollout", "service": unit.service, "instance": unit.index,
                       "result": "started", "reason": reason, "pid": unit.pid})

    def prove(self, new: Unit) -> None:
        """The new incarnation is ready: hold the old one until it has stayed so min_ready."""
        min_ready = new.spec.rollout.min_ready
        if min_ready <= 0:
            self._roll_over(new)
            return
        inc = new.inc
        new.timers["rollout"] = self.timers.call_at(self.clock() + min_ready,
                                                     lambda: self._proven(new, inc))
        self.log.info("rolling restart: new incarnation ready, proving it", service=new.service,
                      instance=new.index, pid=new.pid, min_ready=min_ready)

    def _proven(self, new: Unit, inc: int) -> None:
        new.timers.pop("rollout", None)
        if new.inc == inc and new.predecessor is not None and new.ready and new.state is S.RUNNING:
            self._roll_over(new)

    def _roll_over(self, new: Unit) -> None:
        old, new.predecessor = new.predecessor, None
        if old is None:
            return
        old.successor, old.retiring, old.desired_up, self.table.retiring = None, True, False, True
        self.log.info("rolling restart: new incarnation ready, stopping the old one",
                      service=new.service, instance=new.index, old_pid=old.pid, new_pid=new.pid)
        self.table.publish({"type": "rollout", "service": new.service, "instance": new.index,
                       "result": "proven", "pid": new.pid, "old_pid": old.pid})
        # The drain: the old one gets its stop signal and stop.timeout to finish what it has.
        self.stop(old, old.roll_reason or Reason.MANUAL)

    def _rollout_overdue(self, new: Unit, old: Unit, timeout: float) -> None:
        if new.predecessor is old and not self.table.shutting_down:
            self.abort(new, f"not proven within {timeout:g}s (+ min_ready)")

    def end(self, new: Unit) -> Unit | None:
        """Part the pair: the new incarnation retires, the old one stays as it is."""
        old = new.predecessor
        if old is None:
            return None
        new.predecessor, old.successor, old.roll_reason, old.handed_to = None, None, None, None
        new.retiring, new.desired_up, new.then_start, self.table.retiring = True, False, False, True
        new.cancel_timer("rollout")
        old.spec = old.run_spec or old.spec
        return old

    def abort(self, new: Unit, why: str, exit_: dict[str, Any] | None = None) -> None:
        """The new incarnation failed: stop it (unless it is gone: `exit_`), and leave the
        old one serving with the definition it runs."""
        old = self.end(new)
        if old is None:
            return
        old.restarts = max(old.restarts, new.restarts)   # the attempt was counted at its spawn
        text = f"{ROLLOUT_FAILED}: the new incarnation (pid {new.pid}) {why}; pid {old.pid} keeps serving"
        old.last_exit = {"code": (exit_ or {}).get("code"), "signal": (exit_ or {}).get("signal"),
                         "reason": ROLLOUT_FAILED, "at": time.time(), "description": text}
        uptime = new.last_uptime if exit_ is not None else new.uptime(self.clock())
        old.exits.append({**old.last_exit, "uptime_seconds": round(uptime, 3)})
        self.table.dirty = True
        self.log.warning("rolling restart aborted: the new incarnation failed; the old one "
                         "keeps serving", service=new.service, instance=new.index, why=why,
                         new_pid=new.pid, old_pid=old.pid)
        self.table.publish({"type": "rollout", "service": new.service, "instance": new.index,
                       "result": "failed", "message": text, "pid": old.pid, "new_pid": new.pid})
        if exit_ is None and new.pid is not None:
            self.stop(new, Reason.ROLLOUT_FAILED)
        for hook in self.on_failed:
            hook(new.service, text)
