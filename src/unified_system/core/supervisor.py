"""The owner: one thread, one queue, every service's state.

Other threads only `post()` frozen events. The loop waits on the queue until the next
timer deadline, hands each event to the collaborator HANDLERS names, fires due timers, then
reconciles desired against observed state in dependency order. Nothing here sleeps or
blocks on a child. The state is the table (table.py); the concerns are collaborators,
wired here and nowhere else.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from unified_system import logsetup
from unified_system.core.builds import BuildHooks, Builds
from unified_system.core.commands import Commands
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
from unified_system.core.lifecycle import Lifecycle
from unified_system.core.persistence import Persistence
from unified_system.core.ports import Effects, Facade, Link
from unified_system.core.probing import ProbeHooks, Probing
from unified_system.core.publishing import Snapshots
from unified_system.core.reasons import Reason
from unified_system.core.reloading import Reloading
from unified_system.core.states import State
from unified_system.core.table import Services
from unified_system.core.timers import TimerHeap, wait_seconds
from unified_system.core.vitals import VitalHooks, Vitals
from unified_system.logsetup import get_logger

if TYPE_CHECKING:
    from unified_system.config import LoadedConfig

S = State


@dataclass(frozen=True)
class On:
    handler: str             # "collaborator.method", looked up on the Supervisor
    reconcile: bool = True   # False: frequent, and never changes what reconcile reads by itself


HANDLERS: dict[type, On] = {
    Exited: On("lifecycle.on_exit"),
    Signal: On("commands.on_signal"),
    Command: On("commands.on_command"),
    BuildDone: On("builds.on_done"),
    FileChanged: On("reloading.on_file_changed"),
    ConfigLoaded: On("reloading.on_config_loaded"),
    FreezeProven: On("vitals.on_freeze_proven"),
    Notify: On("probing.on_notify", reconcile=False),
    ProbeResult: On("probing.on_probe", reconcile=False),
    Samples: On("vitals.on_samples", reconcile=False),
    HostAlert: On("vitals.on_host_alert", reconcile=False),
    LateImported: On("_on_late_imported", reconcile=False),
    Barrier: On("_on_barrier", reconcile=False),
    NotifyRefused: On("probing.on_refused", reconcile=False),
}


class Supervisor:
    def __init__(self, loaded: LoadedConfig, *, only: Iterable[str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 effects: Callable[[Link], Effects]) -> None:
        self.clock, self.log = clock, get_logger()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.timers = TimerHeap()
        self.after_turn: list[Callable[[], None]] = []   # side jobs, run after the turn's spawns
        self.strict = os.environ.get("UNIFIED_STRICT") == "1"
        self.owner_errors = 0
        t = self.table = Services(loaded, only, clock, self.log)
        # The adapter (runtime.py, or a fake in tests/core/) gets a Link, never `self`.
        fx = self.effects = effects(Link(self.post, lambda: t.loaded, lambda: t.config,
                                         lambda: t.pid_map, lambda: self.vitals.mem_watch))
        args = (t, self.timers, fx, clock)
        self.persistence = Persistence(*args, self.log)
        self.snapshots = Snapshots(*args, self.log)
        self.lifecycle = life = Lifecycle(*args, self.log)
        self.builds = Builds(*args, self.log, BuildHooks(self.post, life.kill_leftovers))
        self.vitals = Vitals(t.by_inc, self.timers, fx, clock, self.log, VitalHooks(
            self.post, life.restart, life.stop, t.publish, t.changed, self.snapshots.stale_soon,
            self.after_turn.append))
        self.probing = Probing(t.by_inc, self.timers, fx, clock, self.log, ProbeHooks(
            life.became_ready, life.rollouts.abort, life.restart, life.kill, self.vitals.heartbeat,
            t.publish, t.changed))
        life.watchers += [self.probing, self.vitals]
        self.reloading = Reloading(*args, self.log, life, self.builds, self.post)
        self.commands = Commands(*args, self.log, life, self.builds, self.probing, self.reloading)
        t.on_transition.insert(0, lambda *_: self.persistence.save_soon())
        self._handlers = {kind: (attrgetter(on.handler)(self), on.reconcile)
                          for kind, on in HANDLERS.items()}
        # What the API may use of the owner (core/ports.py): never `self`, never the adapter.
        self.facade = Facade(self.post, lambda: self.snapshots.services, lambda: self.snapshots.health,
                             lambda: t.config, lambda: t.loaded, t.listeners)

    def post(self, event: object) -> None:
        """The threads' one door."""
        self._queue.put(event)

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        self.effects.open()
        if self.effects.watcher is not None:   # opened before the first spawn: add the watches
            self.reloading.watch_services(list(self.table.config.services))
        previous = self.effects.watch_signals(
            (signal.SIGINT, signal.SIGTERM, signal.SIGHUP), lambda n: self.post(Signal(n)))
        try:
            self.start()
            while not self.finished():
                timeout = wait_seconds(self.timers.next_deadline(), self.clock())
                try:
                    first = self._queue.get(timeout=timeout)
                except queue.Empty:
                    first = None
                with logsetup.held():  # the turn's log records are written after its spawns
                    self.turn(first)
                while self.after_turn:
                    self._guarded(self.after_turn.pop(0))
            self.persistence.save(sync=True)
            self.log.info("supervisor stopped", exit_code=self.commands.exit_code)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.effects.close()
        return self.commands.exit_code

    def start(self) -> None:
        """The first turn: restore, the first spawns, then the late half of the runtime.
        Apart from run() so that tests/core/ can drive the owner turn by turn."""
        self.log.info("supervisor started", pid=os.getpid(), services=len(self.table.units),
                      config=str(self.table.loaded.path))
        for unit in self.persistence.restore():
            self.lifecycle.breaker.reopen(unit)
        interval = self.effects.systemd_watchdog_interval()
        if interval:
            self.snapshots.systemd_watchdog(interval)
        with logsetup.held():
            self.reconcile()
        # The API, metrics, watcher and sampler come after the first spawns; their
        # modules load on a thread, and LateImported opens them (_on_late_imported).
        self.effects.open_late(lambda: self.post(LateImported()))
        if not self.persistence.pending:
            self.persistence.save()
        self.snapshots.publish()

    def turn(self, first: object | None) -> None:
        if first is not None:
            self._guarded(self._dispatch, first)
            try:
                while True:  # apply the whole batch before reconciling once
                    self._guarded(self._dispatch, self._queue.get_nowait())
            except queue.Empty:
                pass
        for timer in self.timers.pop_due(self.clock()):
            self._guarded(timer.action)
        # Heartbeats, probe results and samples arrive hundreds of times a second and
        # rarely change anything reconcile reads: a pass runs only when something did.
        if self.table.reconcile_due:
            self.table.reconcile_due = False
            self._guarded(self.reconcile)
        if self.reloading.busy:
            self._guarded(self.reloading.check)
        if self.table.dirty:
            self._guarded(self.snapshots.publish)

    def finished(self) -> bool:
        return self.table.shutting_down and self.table.all_at_rest()

    def _dispatch(self, event: object) -> None:
        if isinstance(event, Batch):
            for inner in event.events:
                self._dispatch(inner)
            return
        handler, reconciles = self._handlers[type(event)]
        if reconciles:
            self.table.reconcile_due = True
        handler(event)

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        """A bug in one handler must not take every service down with the supervisor: it is
        logged with its traceback and counted. Tests run strict, so such a bug fails them."""
        try:
            fn(*args)
        except Exception:
            if self.strict:
                raise
            self.owner_errors += 1
            self.log.exception("owner bug: a handler failed; supervision continues",
                               handler=getattr(fn, "__name__", repr(fn)))

    # ------------------------------------------------------------------ the owner's own events
    def _on_late_imported(self, _: LateImported) -> None:
        self.effects.open_api(self.facade)
        # Start-up is over: what it allocated lives as long as the process. Frozen, those
        # objects are never scanned again, and collection resumes (`run` paused it).
        gc.freeze()
        gc.enable()
        self.table.replay_early()

    def _on_barrier(self, event: Barrier) -> None:
        # Closed after the turn, once its snapshot is published: what the sender said
        # before the barrier is then visible to anyone who asks (systemd's promise).
        self.after_turn.append(lambda: self.effects.release_barrier(event.fd))

    # ------------------------------------------------------------------ reconcile
    def reconcile(self) -> None:
        """Desired against observed, in dependency order: spawn what may start, stop what
        is no longer wanted once nothing that depends on it is alive."""
        t, life, builds = self.table, self.lifecycle, self.builds
        for name in t.order:
            for unit in t.units[name]:
                if unit.desired_up:
                    if unit.state is S.PENDING:
                        waiting = t.unmet(name)
                        if waiting:
                            unit.note = "waiting for " + ", ".join(waiting)
                        elif unit.spec.build is not None and not builds.done(name):
                            builds.start(name)
                        else:
                            life.spawn(unit)
                elif unit.state is S.BUILDING:
                    builds.cancel(name)
                    t.transition(unit, S.STOPPED, unit.stop_reason or "stop")
                elif unit.state in (S.PENDING, S.BACKOFF):
                    unit.cancel_timers()
                    t.transition(unit, S.STOPPED, unit.stop_reason or "stop")
                elif unit.state in (S.STARTING, S.RUNNING) and not t.dependents_alive(name):
                    life.stop(unit, unit.stop_reason or Reason.STOP)
