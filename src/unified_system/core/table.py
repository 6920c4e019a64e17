"""The one table of service state: the units, their incarnations and pids, the dependency
graph, and the flags the loop reads. Every state change goes through `transition()`, which
checks the edge against core/states.py and publishes it.

Only the owner thread touches it. Observers get what `publish()` hands the listeners and the
snapshot the loop builds; the adapter gets `pid_map`, replaced whole so that its threads
read it without a lock.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from unified_system import graph
from unified_system.core.states import ALIVE, AT_REST, State, check_transition
from unified_system.core.unit import Unit, meets

if TYPE_CHECKING:
    from unified_system.config.view import ConfigRecord, LoadedConfig

S = State
Changed = Callable[[Unit, State, State], None]   # (unit, old, new), after each transition


class Services:
    def __init__(self, loaded: LoadedConfig, only: Iterable[str] | None,
                 clock: Callable[[], float], log: Any) -> None:
        self.loaded, self.config, self.clock, self.log = loaded, loaded.config, clock, log
        self.units: dict[str, list[Unit]] = {}
        self.by_inc: dict[int, Unit] = {}       # incarnation -> its unit
        self.pid_map: dict[int, int] = {}       # main pid -> incarnation; replaced, never mutated
        self.numbers: Iterator[int] = itertools.count(1)   # incarnations and build runs
        self.removing: set[str] = set()         # removed by a reload, still stopping
        self.retiring = False                   # some unit is retiring: dropped once at rest
        self.dirty = True                       # observers' snapshot is stale
        self.reconcile_due = True               # desired and observed state may differ
        self.shutting_down = False
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.early_events: list[dict[str, Any]] | None = []   # until the API can stream them
        self.on_transition: list[Changed] = []
        services = self.config.services
        self.deps: dict[str, tuple[str, ...]] = {}
        self.dependents: dict[str, set[str]] = {}
        self.order: list[str] = []
        self.rebuild_graph()
        enabled = {n for n, s in services.items() if s.enabled}
        selected = graph.closure(self.deps, only) if only else set(services)
        for name, spec in services.items():
            units = [Unit(name, i, spec) for i in range(spec.instances)]
            for unit in units:
                if name not in enabled:
                    unit.state, unit.desired_up = S.DISABLED, False
                elif name not in selected:
                    unit.state, unit.desired_up = S.STOPPED, False
            self.units[name] = units

    def set_config(self, config: ConfigRecord, loaded: LoadedConfig | None = None) -> None:
        self.config = config
        if loaded is not None:
            self.loaded = loaded

    def rebuild_graph(self) -> None:
        self.deps = {n: tuple(s.depends_on) for n, s in self.config.services.items()}
        self.dependents = graph.dependents(self.deps)
        # Removed services first: they stay reconciled (stopped) until they are at rest.
        self.order = [*sorted(self.removing), *graph.spawn_order(self.deps)]

    def all(self) -> Iterator[Unit]:
        return (u for units in self.units.values() for u in units)

    # ------------------------------------------------------------------ incarnations
    def incarnate(self, unit: Unit, inc: int, pid: int) -> None:
        self.by_inc[inc] = unit
        self.pid_map = {**self.pid_map, pid: inc}

    def bury(self, inc: int) -> Unit | None:
        """The incarnation's process ended: its unit, if it is still the current one."""
        unit = self.by_inc.pop(inc, None)
        if unit is None or unit.inc != inc:
            return None   # a late exit of an older incarnation never touches its replacement
        self.pid_map = {p: i for p, i in self.pid_map.items() if i != inc}
        return unit

    # ------------------------------------------------------------------ the one choke point
    def transition(self, unit: Unit, new: State, reason: str | None = None,
                   note: str | None = None, **extra: Any) -> None:
        old = unit.state
        if old is new:
            return
        check_transition(old, new)
        unit.state, unit.since, unit.note = new, self.clock(), note
        self.dirty = self.reconcile_due = True
        if note:
            extra["note"] = note
        event = {"type": "state", "service": unit.service, "instance": unit.index,
                 "state": new.value, "previous": old.value, "pid": unit.pid, "reason": reason, **extra}
        level = "error" if new is S.FATAL else "info"
        getattr(self.log, level)("state", **{k: v for k, v in event.items() if k != "type"})
        self.publish(event)
        for hook in self.on_transition:
            hook(unit, old, new)

    def publish(self, event: dict[str, Any]) -> None:
        event.setdefault("at", time.time())
        if self.early_events is not None:
            self.early_events.append(event)
            return
        for listener in self.listeners:
            listener(event)

    def changed(self) -> None:
        """Something observers read changed: the next turn publishes a new snapshot."""
        self.dirty = True

    def replay_early(self) -> None:
        """The API is open: what happened before it could stream, in order."""
        early, self.early_events = self.early_events or [], None
        for event in early:
            self.publish(event)
        self.dirty = True

    # ------------------------------------------------------------------ what reconcile reads
    def unmet(self, name: str) -> list[str]:
        spec = self.config.services[name]
        return [f"{dep} ({d.condition})" for dep, d in spec.depends_on.items()
                if not meets(self.units[dep], d.condition)]

    def dependents_alive(self, name: str) -> bool:
        return any(u.state in ALIVE or u.state is S.BUILDING or u.lingering_pgid is not None
                   for dep in self.dependents.get(name, ()) for u in self.units[dep])

    def at_rest(self, name: str) -> bool:
        return all(u.state in AT_REST and u.lingering_pgid is None for u in self.units[name])

    def all_at_rest(self) -> bool:
        return all(self.at_rest(name) for name in self.units)
