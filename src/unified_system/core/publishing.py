"""What observers read, published by the owner: the SPEC §6 service objects and the overall
health, replaced whole (so other threads read them without a lock), and systemd's view of
the supervisor as a Type=notify unit (READY=1, STATUS=, WATCHDOG=1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unified_system.core.ports import Effects
from unified_system.core.snapshot import heartbeat_fields, overall, service_object
from unified_system.core.table import Services
from unified_system.core.timers import TimerHeap


class Snapshots:
    def __init__(self, table: Services, timers: TimerHeap, effects: Effects,
                 clock: Callable[[], float], log: Any) -> None:
        self.table, self.timers, self.effects, self.clock, self.log = table, timers, effects, clock, log
        self.services: tuple[dict[str, Any], ...] = ()
        self.health: dict[str, Any] = {}
        # name -> (its units and their versions, its service object): reused while unchanged
        self._objects: dict[str, tuple[tuple, dict[str, Any]]] = {}
        self._stale_pending = False
        self._systemd_ready = False
        self._systemd_status = ""

    def publish(self) -> None:
        now = self.clock()
        cache, built = self._objects, {}
        for name, units in self.table.units.items():
            if units:
                key, spec = tuple((u, u.version) for u in units), units[0].spec
                hit = cache.get(name)
                if hit is None or hit[0] != key:
                    hit = (key, service_object(name, units, spec, now))
                elif spec.heartbeat is not None:   # only heartbeats since: patch their fields
                    beat = heartbeat_fields(units, spec, now)
                    if beat["heartbeat_at"] != hit[1]["heartbeat_at"]:
                        hit = (key, {**hit[1], **beat})
                built[name] = hit
        self._objects = built
        objects = tuple(entry[1] for entry in built.values())
        self.services, self.health, self.table.dirty = objects, overall(objects), False
        self._tell_systemd(objects)

    def stale_soon(self) -> None:
        """A change observers may see up to a second late (heartbeat stamps): one snapshot a
        second for all of them, instead of one per heartbeat."""
        if not self._stale_pending:
            self._stale_pending = True
            self.timers.call_at(self.clock() + 1.0, self._stale_due)

    def _stale_due(self) -> None:
        self._stale_pending = False
        self.table.dirty = True

    def _tell_systemd(self, objects: tuple[dict[str, Any], ...]) -> None:
        """READY=1 once every critical service is healthy, and a STATUS= when it changes."""
        wanted = [o for o in objects if o["state"] not in ("disabled", "stopped")]
        healthy = sum(1 for o in wanted if o["state"] == "running" and o["ready"])
        status = f"{healthy}/{len(wanted)} services healthy"
        if status != self._systemd_status:
            self._systemd_status = status
            self.effects.signal_systemd(f"STATUS={status}")
        if not self._systemd_ready and all(o["state"] == "running" and o["ready"]
                                           for o in wanted if o["critical"]):
            self._systemd_ready = True
            self.effects.signal_systemd("READY=1")
            self.log.info("all critical services healthy", status=status)

    def systemd_watchdog(self, interval: float) -> None:
        """Pinged from the owner loop itself: a hung owner stops pinging, and systemd acts."""
        self.effects.signal_systemd("WATCHDOG=1")
        self.timers.call_at(self.clock() + interval, lambda: self.systemd_watchdog(interval))
