"""A unit is one instance of one service: the thing that has a process and a state.

Only the owner thread touches units. Observers get `Unit.view()` dicts via the snapshot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_system.core.reasons import Reason
from unified_system.core.states import ALIVE, State
from unified_system.core.timers import Timer

if TYPE_CHECKING:
    from unified_system.config.schema import Service


@dataclass
class ProbeTrack:
    """Consecutive results of one probe kind for the current incarnation."""

    successes: int = 0
    failures: int = 0
    passed_once: bool = False
    last_ok: bool | None = None
    detail: str = ""


_UNVERSIONED = frozenset({"last_heartbeat", "heartbeat_wall"})


@dataclass(eq=False)
class Unit:
    service: str
    index: int
    spec: Service
    state: State = State.PENDING
    since: float = field(default_factory=time.monotonic)
    desired_up: bool = True

    # the current incarnation (0: no process)
    inc: int = 0
    pid: int | None = None
    pgid: int | None = None
    spawned_at: float | None = None      # monotonic
    spawned_wall: float | None = None    # for display

    ready: bool = False
    health: str = "unknown"
    status_text: str | None = None
    restarts: int = 0
    failures: int = 0                    # consecutive, drives the backoff
    scarce_tries: int = 0                # consecutive spawns that found fds/memory scarce
    restart_times: deque = field(default_factory=deque)   # within restart.window only
    exits: deque = field(default_factory=lambda: deque(maxlen=20))   # crash history
    circuit: str = "closed"
    last_exit: dict[str, Any] | None = None
    ever_spawned: bool = False

    stop_reason: Reason | None = None       # why the current process is being stopped
    then_start: bool = False             # start again once the stop completes
    lingering_pgid: int | None = None    # a stopped leader's group that still has members
    note: str | None = None              # why it waits / why it is fatal
    last_heartbeat: float | None = None  # monotonic, stamped on arrival
    heartbeat_wall: float | None = None  # the same moment, for observers; republished <= 1/s
    freezing: bool = False               # a hard freeze is being proven and acted on
    cpu_at_silence: float | None = None
    freeze_report: dict[str, Any] | None = None
    rss: int | None = None               # last sampled tree RSS
    last_uptime: float = 0.0
    retiring: bool = False               # removed by a reload: dropped once at rest
    predecessor: Unit | None = None      # rolling restart: the unit this one replaces
    successor: Unit | None = None
    roll_reason: Reason | None = None
    handed_to: Unit | None = None        # rolling restart: who shows this one's exit once it ends
    run_spec: Service | None = None      # the definition the current process was spawned with
    timers: dict[str, Timer] = field(default_factory=dict)
    probes: dict[str, ProbeTrack] = field(default_factory=dict)
    version: int = field(default=0, repr=False)  # bumped by every write but a heartbeat's

    def __setattr__(self, name: str, value: Any) -> None:
        # The snapshot rebuilds a service's object only when one of its units changed. A
        # heartbeat's stamps (hundreds a second) are patched into the object instead.
        object.__setattr__(self, name, value)
        if name not in _UNVERSIONED:
            object.__setattr__(self, "version", self.__dict__.get("version", 0) + 1)

    @property
    def alive(self) -> bool:
        return self.state in ALIVE

    def cancel_timer(self, name: str) -> None:
        timer = self.timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def cancel_timers(self, prefix: str = "") -> None:
        for name in [n for n in self.timers if n.startswith(prefix)]:
            self.cancel_timer(name)

    def fresh_start(self) -> None:
        """An operator's start (or a new definition): no pending timer, a closed circuit and
        the whole restart budget."""
        self.cancel_timers()
        self.circuit, self.failures = "closed", 0
        self.restart_times.clear()

    def uptime(self, now: float) -> float:
        return now - self.spawned_at if self.spawned_at is not None and self.alive else 0.0

    def view(self, now: float) -> dict[str, Any]:
        return {"index": self.index, "pid": self.pid, "state": self.state.value,
                "ready": self.ready, "health": self.health, "restarts": self.restarts,
                "uptime_seconds": round(self.uptime(now), 3), "last_exit": self.last_exit,
                "circuit": self.circuit, "status": self.status_text, "note": self.note}


def meets(units: Iterable[Unit], condition: str) -> bool:
    """Whether a dependency's instances satisfy a depends_on condition (SPEC §4)."""
    units = list(units)
    if not units:
        return False
    if condition == "started":
        return all(u.state in (State.STARTING, State.RUNNING) for u in units)
    if condition == "healthy":
        return all(u.state is State.RUNNING and u.ready for u in units)
    if condition == "completed":
        return all(u.state is State.EXITED and (u.last_exit or {}).get("code") == 0 for u in units)
    raise ValueError(f"unknown condition {condition!r}")
