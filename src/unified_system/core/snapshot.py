"""What observers see: the SPEC §6 service object, built by the owner and published whole."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from unified_system.core.states import State, aggregate
from unified_system.core.unit import Unit

if TYPE_CHECKING:
    from unified_system.config.schema import Service

_HEALTH_ORDER = ("frozen", "unhealthy", "unknown", "healthy")
_CIRCUIT_ORDER = ("open", "half-open", "closed")


def _worst(values: Iterable[str], order: tuple[str, ...]) -> str:
    present = set(values)
    return next((v for v in order if v in present), order[-1])


def service_object(name: str, units: list[Unit], spec: Service, now: float) -> dict[str, Any]:
    """`now` is monotonic; wall-clock fields are for display only."""
    state = aggregate(u.state for u in units)
    exits = [u.last_exit for u in units if u.last_exit]
    started = [u.spawned_wall for u in units if u.alive and u.spawned_wall]
    return {
        "name": name,
        "state": state.value,
        "ready": all(u.ready for u in units) and state is State.RUNNING,
        "health": _worst((u.health for u in units), _HEALTH_ORDER),
        "pid": units[0].pid,
        "instances": [{"index": u.index, "pid": u.pid, "state": u.state.value} for u in units],
        "uptime_seconds": round(max((u.uptime(now) for u in units), default=0.0), 3),
        "started_at": min(started) if started else None,
        "restarts": sum(u.restarts for u in units),
        "last_exit": max(exits, key=lambda e: e["at"]) if exits else None,
        "circuit": _worst((u.circuit for u in units), _CIRCUIT_ORDER),
        "depends_on": list(spec.depends_on),
        # How each dependency gates the start: the dashboard labels its graph's edges with it.
        "dependencies": {dep: {"condition": d.condition, "restart": d.restart}
                         for dep, d in spec.depends_on.items()},
        "critical": spec.critical,
        "memory_rss_bytes": None,   # live figures are read from the OS by the observer
        "cpu_percent": None,
        **heartbeat_fields(units, spec, now),
        "status": units[0].status_text,
        "note": units[0].note,
    }


def heartbeat_fields(units: list[Unit], spec: Service, now: float) -> dict[str, float | None]:
    """The object's heartbeat fields: a heartbeat changes only these (Unit.version ignores
    its stamps), so the publisher patches them into an object it otherwise reuses."""
    return {"heartbeat_age_seconds": _heartbeat_age(units, spec, now),
            "heartbeat_at": _heartbeat_at(units, spec)}


def _heartbeat_age(units: list[Unit], spec: Service, now: float) -> float | None:
    """Seconds since the stalest live instance last beat (None without a heartbeat)."""
    if spec.heartbeat is None:
        return None
    beats = [u.last_heartbeat for u in units if u.alive and u.last_heartbeat is not None]
    return round(now - min(beats), 3) if beats else None


def _heartbeat_at(units: list[Unit], spec: Service) -> float | None:
    """Wall time of the stalest live instance's last heartbeat: readers compute the age."""
    if spec.heartbeat is None:
        return None
    beats = [u.heartbeat_wall for u in units if u.alive and u.heartbeat_wall is not None]
    return min(beats) if beats else None


def overall(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """healthy / degraded (a non-critical service is fatal) / unhealthy (a critical one is)."""
    objects = list(objects)
    fatal = [o for o in objects if o["state"] == State.FATAL.value]
    if any(o["critical"] for o in fatal):
        status = "unhealthy"
    elif fatal:
        status = "degraded"
    else:
        status = "healthy"
    return {"status": status, "services": {o["name"]: o["state"] for o in objects},
            "at": time.time()}
