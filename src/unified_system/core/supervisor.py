"""The owner: one thread, one queue, every service's state.

Other threads only `post()` frozen events. The loop waits on the queue until the next
timer deadline, applies events, fires due timers, then reconciles desired against observed
state in dependency order. Nothing here sleeps or blocks on a child.
"""

from __future__ import annotations

import functools
import gc
import itertools
import os
import queue
import random
import signal
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from unified_system import graph, logsetup
from unified_system.core.builds import BuildHooks, Builds
from unified_system.core.commands import CommandMixin
from unified_system.core.events import (
    Barrier,
    Batch,
    BuildDone,
    Command,
    ConfigLoaded,
    Exited,
    FileChanged,
    FreezeProven,
    HostAlert,
    LateImported,
    Notify,
    NotifyRefused,
    ProbeResult,
    Samples,
    Signal,
)
from unified_system.core.lifecycle import LifecycleMixin
from unified_system.core.persistence import Persistence
from unified_system.core.ports import Effects, Facade, Link
from unified_system.core.probing import ProbeHooks, Probing
from unified_system.core.reasons import Reason
from unified_system.core.reloading import ReloadMixin
from unified_system.core.rollout import RolloutMixin
from unified_system.core.snapshot import overall, service_object
from unified_system.core.states import ALIVE, AT_REST, State, check_transition
from unified_system.core.timers import TimerHeap, wait_seconds
from unified_system.core.unit import Unit, meets
from unified_system.core.vitals import VitalHooks, Vitals
from unified_system.logsetup import get_logger

if TYPE_CHECKING:
    from unified_system.config import LoadedConfig

S = State


class Supervisor(LifecycleMixin, CommandMixin,
                 ReloadMixin, RolloutMixin):
    """The owner. Its duties are cut by concern into mixins (lifecycle, probing, commands,
    persistence, watchdog, builds, reloading); all of them run on this one thread."""

    def __init__(self, loaded: LoadedConfig, *, only: Iterable[str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 effects: Callable[[Link], Effects]) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.clock = clock
        self.log = get_logger()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._timers = TimerHeap()
        self._rand = random.Random()
        self._incs = itertools.count(1)
        self._by_inc: dict[int, Unit] = {}
        self._pid_map: dict[int, int] = {}     # main pid -> incarnation; replaced, never mutated
        self._debounce: dict[str, Any] = {}
        self._reload: Any = None
        self._reload_parsing = False
        self._removing: set[str] = set()
        self._after_turn: list[Callable[[], None]] = []  # side jobs, run after the turn's spawns
        self._systemd_ready = False
        self._strict = os.environ.get("UNIFIED_STRICT") == "1"
        self._stale_pending = False
        self._reconcile_due = True
        self._retiring = False                 # some unit is retiring: _check_reload drops it at rest
        self.owner_errors = 0
        self._systemd_status = ""
        self._shutting_down = False
        self._exit_code = 0
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        # Events from before the API opens, replayed to the observers that open_api() attaches.
        self._early_events: list[dict[str, Any]] | None = []
        # Published for observers (API, metrics, console): replaced whole, never mutated.
        self.snapshot: tuple[dict[str, Any], ...] = ()
        self.health: dict[str, Any] = {}
        self._dirty = True
        # name -> (its units and their versions, its service object): reused while unchanged
        self._objects: dict[str, tuple[tuple, dict[str, Any]]] = {}

        services = self.config.services
        self._deps = {n: tuple(s.depends_on) for n, s in services.items()}
        self._dependents = graph.dependents(self._deps)
        self._order = graph.spawn_order(self._deps)
        enabled = {n for n, s in services.items() if s.enabled}
        selected = graph.closure(self._deps, only) if only else set(services)
        self.units: dict[str, list[Unit]] = {}
        for name, spec in services.items():
            units = [Unit(name, i, spec) for i in range(spec.instances)]
            for unit in units:
                if name not in enabled:
                    unit.state, unit.desired_up = S.DISABLED, False
                elif name not in selected:
                    unit.state, unit.desired_up = S.STOPPED, False
            self.units[name] = units
        # The adapter (proc/runtime.py, or a fake in tests/core/) gets a Link, never `self`.
        self.runtime: Effects = effects(Link(
            self.post, lambda: self.loaded, lambda: self.config,
            lambda: self._pid_map, lambda: self.vitals.mem_watch))
        self.persistence = Persistence(self.units, self._timers, self.runtime, self.clock,
                                       lambda: self.config, self.log)
        self.builds = Builds(self.units, self._timers, self.runtime, self.clock,
                             lambda: self.config, self.log, self._incs,
                             BuildHooks(self.post, self._transition, self._kill_leftovers))
        self.vitals = Vitals(self._by_inc, self._timers, self.runtime, self.clock, self.log,
                             VitalHooks(self.post, self._restart, self._stop, self._publish,
                                        self._mark_dirty, self._stale_soon, self._after_turn.append))
        self.probing = Probing(self._by_inc, self._timers, self.runtime, self.clock, self.log,
                               ProbeHooks(self._became_ready, self._abort_rollout, self._restart,
                                          self._kill, self.vitals.heartbeat, self._publish, self._mark_dirty))
        # What the API may use of the owner (core/ports.py): never `self`, never the adapter.
        self.facade = Facade(self.post, lambda: self.snapshot, lambda: self.health,
                             lambda: self.config, lambda: self.loaded, self.listeners)

    # ------------------------------------------------------------------ threads' door
    def post(self, event: object) -> None:
        self._queue.put(event)

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        self.runtime.open()
        if self.runtime.watcher is not None:   # opened before the first spawn: add the watches
            self._watch_services(list(self.config.services))
        previous = self.runtime.watch_signals(
            (signal.SIGINT, signal.SIGTERM, signal.SIGHUP), lambda n: self.post(Signal(n)))
        try:
            self.start()
            self._loop()
            self.finish()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.runtime.close()
        return self._exit_code

    def start(self) -> None:
        """The first turn: restore, the first spawns, then the late half of the runtime.
        Apart from run() so that tests/core/ can drive the owner turn by turn."""
        self.log.info("supervisor started", pid=os.getpid(), services=len(self.units),
                      config=str(self.loaded.path))
        for unit in self.persistence.restore():
            self._reopen_circuit(unit)
        interval = self.runtime.systemd_watchdog_interval()
        if interval:
            self._systemd_watchdog(interval)
        with logsetup.held():
            self._reconcile()
        # The API, metrics, watcher and sampler come after the first spawns; their
        # modules load on a thread, and LateImported opens them (_on_late_imported).
        self.runtime.open_late(lambda: self.post(LateImported()))
        if not self.persistence.pending:
            self.persistence.save()
        self._publish_snapshot()

    def _reopen_circuit(self, unit: Unit) -> None:
        """A circuit open when the last supervisor stopped stays open, its cooldown anew."""
        unit.circuit = "open"
        self._transition(unit, S.FATAL, "circuit_open", note="circuit open (restored)")
        cooldown = unit.spec.restart.cooldown
        if cooldown is not None:
            unit.timers["cooldown"] = self._timers.call_at(
                self.clock() + cooldown, functools.partial(self._half_open, unit))

    def finish(self) -> None:
        self.persistence.save(sync=True)
        self.log.info("supervisor stopped", exit_code=self._exit_code)

    def _loop(self) -> None:
        while not self._finished():
            timeout = wait_seconds(self._timers.next_deadline(), self.clock())
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = None
            with logsetup.held():  # the turn's log records are written after its spawns
                self._turn(first)
            while self._after_turn:
                self._guarded(self._after_turn.pop(0))

    def _turn(self, first: object | None) -> None:
        if first is not None:
            self._guarded(self._dispatch, first)
            try:
                while True:  # apply the whole batch before reconciling once
                    self._guarded(self._dispatch, self._queue.get_nowait())
            except queue.Empty:
                pass
        for timer in self._timers.pop_due(self.clock()):
            self._guarded(timer.action)
        # Heartbeats, probe results and samples arrive hundreds of times a second and
        # rarely change anything reconcile reads: a pass runs only when something did.
        if self._reconcile_due:
            self._reconcile_due = False
            self._guarded(self._reconcile)
        if self._reload is not None or self._removing or self._retiring:
            self._guarded(self._check_reload)
        if self._dirty:
            self._guarded(self._publish_snapshot)

    def _mark_dirty(self) -> None:
        """Something observers read changed: the next turn publishes a new snapshot."""
        self._dirty = True

    def _stale_soon(self) -> None:
        """A change observers may see up to a second late (heartbeat stamps): one snapshot a
        second for all of them, instead of one per heartbeat."""
        if not self._stale_pending:
            self._stale_pending = True
            self._timers.call_at(self.clock() + 1.0, self._stale_due)

    def _stale_due(self) -> None:
        self._stale_pending = False
        self._dirty = True

    def _publish_snapshot(self) -> None:
        now = self.clock()
        cache, built = self._objects, {}
        for name, units in self.units.items():
            if units:
                key = tuple((u, u.version) for u in units)
                hit = cache.get(name)
                built[name] = hit if hit is not None and hit[0] == key else \
                    (key, service_object(name, units, units[0].spec, now))
        self._objects = built
        objects = tuple(entry[1] for entry in built.values())
        self.snapshot, self.health, self._dirty = objects, overall(objects), False
        self._tell_systemd(objects)

    def _tell_systemd(self, objects: tuple[dict[str, Any], ...]) -> None:
        """As a Type=notify unit: READY=1 once every critical service is healthy, and a STATUS."""
        wanted = [o for o in objects if o["state"] not in ("disabled", "stopped")]
        healthy = sum(1 for o in wanted if o["state"] == "running" and o["ready"])
        status = f"{healthy}/{len(wanted)} services healthy"
        if status != self._systemd_status:
            self._systemd_status = status
            self.runtime.signal_systemd(f"STATUS={status}")
        if not self._systemd_ready and all(o["state"] == "running" and o["ready"]
                                           for o in wanted if o["critical"]):
            self._systemd_ready = True
            self.runtime.signal_systemd("READY=1")
            self.log.info("all critical services healthy", status=status)

    def _systemd_watchdog(self, interval: float) -> None:
        """Pinged from the owner loop itself: a hung owner stops pinging, and systemd acts."""
        self.runtime.signal_systemd("WATCHDOG=1")
        self._timers.call_at(self.clock() + interval, lambda: self._systemd_watchdog(interval))

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        """A bug in one handler must not take every service down with the supervisor: it is
        logged with its traceback and counted. Tests run strict, so such a bug fails them."""
        try:
            fn(*args)
        except Exception:
            if self._strict:
                raise
            self.owner_errors += 1
            self.log.exception("owner bug: a handler failed; supervision continues",
                               handler=getattr(fn, "__name__", repr(fn)))

    def _finished(self) -> bool:
        return self._shutting_down and all(
            u.state in AT_REST and u.lingering_pgid is None for us in self.units.values() for u in us)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, Batch):
            for inner in event.events:
                self._dispatch(inner)
            return
        if not isinstance(event, (Notify, ProbeResult, Samples, HostAlert, LateImported, Barrier,
                                  NotifyRefused)):
            self._reconcile_due = True  # commands, exits, signals, builds, config: always
        if isinstance(event, Exited):
            self._on_exit(event)
        elif isinstance(event, Notify):
            self.probing.on_notify(event)
        elif isinstance(event, ProbeResult):
            self.probing.on_probe(event)
        elif isinstance(event, Signal):
            self._on_signal(event.signum)
        elif isinstance(event, Command):
            self._on_command(event)
        elif isinstance(event, Samples):
            self.vitals.on_samples(event)
        elif isinstance(event, FreezeProven):
            self.vitals.on_freeze_proven(event)
        elif isinstance(event, HostAlert):
            self.vitals.on_host_alert(event)
        elif isinstance(event, BuildDone):
            self.builds.on_done(event)
        elif isinstance(event, FileChanged):
            self._on_file_changed(event)
        elif isinstance(event, ConfigLoaded):
            self._on_config_loaded(event)
        elif isinstance(event, LateImported):
            self._on_late_imported()
        elif isinstance(event, Barrier):
            # Closed after the turn, once its snapshot is published: what the sender said
            # before the barrier is then visible to anyone who asks (systemd's promise).
            fd = event.fd
            self._after_turn.append(lambda: self.runtime.release_barrier(fd))
        elif isinstance(event, NotifyRefused):
            self.log.warning("notify datagram refused: its sender is in no service's process tree",
                             pid=event.pid, keys=list(event.keys),
                             note="later refused senders are not logged" if event.last else None)

    def _on_late_imported(self) -> None:
        self.runtime.open_api(self.facade)
        # Start-up is over: what it allocated lives as long as the process. Frozen, those
        # objects are never scanned again, and collection resumes (`run` paused it).
        gc.freeze()
        gc.enable()
        early, self._early_events = self._early_events or [], None
        for event in early:   # what happened before the API could stream it
            self._publish(event)
        self._dirty = True

    # ------------------------------------------------------------------ the one choke point
    def _transition(self, unit: Unit, new: State, reason: str | None = None,
                    note: str | None = None, **extra: Any) -> None:
        old = unit.state
        if old is new:
            return
        check_transition(old, new)
        unit.state, unit.since, unit.note = new, self.clock(), note
        self._dirty = self._reconcile_due = True
        self.persistence.save_soon()
        if note:
            extra["note"] = note
        event = {"type": "state", "service": unit.service, "instance": unit.index,
                 "state": new.value, "previous": old.value, "pid": unit.pid, "reason": reason, **extra}
        level = "error" if new is S.FATAL else "info"
        getattr(self.log, level)("state", **{k: v for k, v in event.items() if k != "type"})
        self._publish(event)
        if (new is S.FATAL and unit.spec.critical and not self._shutting_down
                and self.config.supervisor.exit_on_critical_failure):
            self.log.error("critical service is fatal: stopping everything",
                           service=unit.service, note=note)
            self._exit_code = 1
            self.shutdown()

    def _publish(self, event: dict[str, Any]) -> None:
        event.setdefault("at", time.time())
        if self._early_events is not None:
            self._early_events.append(event)
            return
        for listener in self.listeners:
            listener(event)

    # ------------------------------------------------------------------ reconcile
    def _reconcile(self) -> None:
        for name in self._order:
            for unit in self.units[name]:
                if unit.desired_up:
                    if unit.state is S.PENDING:
                        waiting = self._unmet(name)
                        if waiting:
                            unit.note = "waiting for " + ", ".join(waiting)
                        elif unit.spec.build is not None and not self.builds.done(name):
                            self.builds.start(name)
                        else:
                            self._spawn(unit)
                elif unit.state is S.BUILDING:
                    self.builds.cancel(name)
                    self._transition(unit, S.STOPPED, unit.stop_reason or "stop")
                elif unit.state in (S.PENDING, S.BACKOFF):
                    unit.cancel_timers()
                    self._transition(unit, S.STOPPED, unit.stop_reason or "stop")
                elif unit.state in (S.STARTING, S.RUNNING) and not self._dependents_alive(name):
                    self._stop(unit, unit.stop_reason or Reason.STOP)

    def _unmet(self, name: str) -> list[str]:
        spec = self.config.services[name]
        return [f"{dep} ({d.condition})" for dep, d in spec.depends_on.items()
                if not meets(self.units[dep], d.condition)]

    def _dependents_alive(self, name: str) -> bool:
        return any(u.state in ALIVE or u.state is S.BUILDING or u.lingering_pgid is not None
                   for dep in self._dependents.get(name, ()) for u in self.units[dep])
