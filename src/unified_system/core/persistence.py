"""state.json, as an owner mixin: restore at start (after stopping a dead predecessor's
leftovers), coalesced saves while running, a final save at exit."""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any

from unified_system.core import statefile
from unified_system.core.owner import Owner
from unified_system.core.states import State

S = State


class Written:
    """Which save is on disk; shared by the owner's final save and the worker's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.number = 0


class PersistenceMixin(Owner):
    # ------------------------------------------------------------------ state.json
    def _restore(self) -> None:
        """Stop what a SIGKILLed predecessor left running, then take over its history."""
        path = self.runtime.state_dir / "state.json"
        for item in statefile.take_stopped_before_start(self.runtime.state_dir):
            self.log.warning("stopping a process left by a previous supervisor", service=item.get("service"),
                             pid=item.get("pid"), pgid=item.get("pgid"), before_port_check=True)
        saved = statefile.read_state(path, self.log)
        found = statefile.leftovers(saved)
        if found:
            timeout = max((self.config.services[f["service"]].stop.timeout for f in found
                           if f["service"] in self.config.services), default=10.0)
            self.runtime.stop_leftovers(found, min(timeout, 10.0), self.log)
        now, wall = self.clock(), time.time()
        for name, svc in saved.get("services", {}).items():
            for unit in self.units.get(name, ()):
                unit.restarts = int(svc.get("restarts", 0)) if unit.index == 0 else 0
                unit.ever_spawned = bool(svc.get("ever_spawned", unit.restarts))
                # Each instance its own history (files of before it was kept apart: the first)
                mine = svc.get("by_instance", {}).get(str(unit.index))
                if mine is None:
                    mine = svc if unit.index == 0 and "by_instance" not in svc else {}
                unit.restart_times.extend(now - (wall - t) for t in mine.get("restart_times", [])
                                          if wall - t < unit.spec.restart.window)
                unit.exits.extend(mine.get("crash_history", [])[-20:])
                unit.last_exit = svc.get("last_exit")
                if mine.get("circuit") == "open" and unit.desired_up:
                    unit.circuit = "open"
                    self._transition(unit, S.FATAL, "circuit_open", note="circuit open (restored)")
                    cooldown = unit.spec.restart.cooldown
                    if cooldown is not None:
                        unit.timers["cooldown"] = self._timers.call_at(
                            now + cooldown, functools.partial(self._half_open, unit))
        # Saved after the first spawns (run()): even on the worker, encoding state.json now
        # would take the GIL from them.

    def _save_state_soon(self) -> None:
        """Coalesce: many changes in a burst cost one write."""
        if not self._state_save_pending:
            self._state_save_pending = True
            self._timers.call_at(self.clock() + 0.25, self._save_state)

    def _save_state(self, sync: bool = False) -> None:
        self._state_save_pending = False
        now, wall = self.clock(), time.time()
        services = {}
        for name, units in self.units.items():
            services[name] = {
                "restarts": sum(u.restarts for u in units),
                "ever_spawned": any(u.ever_spawned for u in units),
                "circuit": next((u.circuit for u in units if u.circuit != "closed"), "closed"),
                "last_exit": units[0].last_exit,
                "by_instance": {str(u.index): {  # in a rolling restart the new unit, listed later
                    "restart_times": [wall - (now - t) for t in u.restart_times],
                    "crash_history": list(u.exits), "circuit": u.circuit} for u in units},
                "instances": [{"index": u.index, "pid": u.pid, "pgid": u.pgid} for u in units if u.pid],
            }
        data: dict[str, Any] = {"format": statefile.FORMAT, "supervisor_pid": os.getpid(), "saved_at": wall,
                "services": services}
        path = self.runtime.state_dir / "state.json"
        self._state_saves += 1
        number, written = self._state_saves, self._state_written

        def write() -> None:  # create times are read here, off the owner thread
            for svc in data["services"].values():
                for inst in svc["instances"]:
                    inst["create_time"] = statefile.create_time(inst["pid"])
            with written.lock:  # the final save (on the owner) and a late one on the worker
                if written.number > number:
                    return  # a newer state is on disk already
                try:
                    statefile.write_atomic(path, data)
                    written.number = number
                except OSError as exc:  # a full or vanished disk must not kill supervision
                    self.log.error("cannot write state.json", path=str(path), error=str(exc))

        if sync:
            write()
        else:
            self.runtime.submit(write)
