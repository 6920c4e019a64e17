"""state.json, as a collaborator of the owner: restore at start (after stopping a dead
predecessor's leftovers), coalesced saves while running, a final save at exit.

It holds its own state (whether a save is pending, which save is on disk) and is given the
table of service state, the timers, `Effects` and the clock; it never reaches the owner.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from unified_system.core import statefile
from unified_system.core.ports import Effects
from unified_system.core.table import Services
from unified_system.core.timers import TimerHeap
from unified_system.core.unit import Unit


class Written:
    """Which save is on disk; shared by the owner's final save and the worker's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.number = 0


class Persistence:
    def __init__(self, table: Services, timers: TimerHeap, effects: Effects,
                 clock: Callable[[], float], log: Any) -> None:
        self.table, self.timers, self.effects, self.clock, self.log = table, timers, effects, clock, log
        self.pending = False          # a coalesced save is scheduled
        self.saves = 0
        self.written = Written()

    def restore(self) -> list[Unit]:
        """Stop what a SIGKILLed predecessor left running, then take over its history.
        Returns the wanted units whose circuit was open: lifecycle opens them again."""
        state_dir = self.effects.state_dir
        for item in statefile.take_stopped_before_start(state_dir):
            self.log.warning("stopping a process left by a previous supervisor", service=item.get("service"),
                             pid=item.get("pid"), pgid=item.get("pgid"), before_port_check=True)
        saved = statefile.read_state(state_dir / "state.json", self.log)
        found = self.effects.find_leftovers(saved)
        services = self.table.config.services
        if found:
            timeout = max((services[f["service"]].stop.timeout for f in found
                           if f["service"] in services), default=10.0)
            self.effects.stop_leftovers(found, min(timeout, 10.0), self.log)
        now, wall = self.clock(), time.time()
        tripped: list[Unit] = []
        for name, svc in saved.get("services", {}).items():
            for unit in self.table.units.get(name, ()):
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
                    tripped.append(unit)
        # Saved after the first spawns (Supervisor.start): even on the worker, encoding
        # state.json now would take the GIL from them.
        return tripped

    def save_soon(self) -> None:
        """Coalesce: many changes in a burst cost one write."""
        if not self.pending:
            self.pending = True
            self.timers.call_at(self.clock() + 0.25, self.save)

    def save(self, sync: bool = False) -> None:
        self.pending = False
        now, wall = self.clock(), time.time()
        services = {}
        for name, units in self.table.units.items():
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
        path = self.effects.state_dir / "state.json"
        self.saves += 1
        number, written, log, effects = self.saves, self.written, self.log, self.effects

        def write() -> None:  # create times are read here, off the owner thread
            for svc in data["services"].values():
                for inst in svc["instances"]:
                    inst["create_time"] = effects.create_time(inst["pid"])
            with written.lock:  # the final save (on the owner) and a late one on the worker
                if written.number > number:
                    return  # a newer state is on disk already
                try:
                    statefile.write_atomic(path, data)
                    written.number = number
                except OSError as exc:  # a full or vanished disk must not kill supervision
                    log.error("cannot write state.json", path=str(path), error=str(exc))

        if sync:
            write()
        else:
            self.effects.submit(write)
