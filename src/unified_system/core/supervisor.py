"""The owner: one thread, one queue, every service's state.

Other threads only `post()` frozen events. The loop waits on the queue until the next
timer deadline, applies events, fires due timers, then reconciles desired against observed
state in dependency order. Nothing here sleeps or blocks on a child.
"""

from __future__ import annotations

import itertools
import os
import queue
import random
import signal
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from unified_system import graph
from unified_system.core import policy
from unified_system.core.builds import BuildMixin
from unified_system.core.events import (BuildDone, Command, ConfigLoaded, Exited, FileChanged,
                                        FreezeProven, HostAlert, Notify, ProbeResult, Samples,
                                        Signal)
from unified_system.core.reloading import DEFERRED, ReloadInProgress, ReloadMixin
from unified_system.core.runtime import Runtime
from unified_system.core.snapshot import overall, service_object
from unified_system.core import statefile
from unified_system.core.states import ALIVE, AT_REST, State, check_transition
from unified_system.core.timers import TimerHeap
from unified_system.core.unit import ProbeTrack, Unit, meets
from unified_system.core.watchdog import WatchdogMixin
from unified_system.logsetup import get_logger
from unified_system.proc.notify import owner_of
from unified_system.proc.seam import SpawnError

if TYPE_CHECKING:
    from unified_system.config import LoadedConfig

S = State
LINGER_CHECK = 0.02  # no kernel event says "this process group is now empty"; check briefly


class Supervisor(WatchdogMixin, BuildMixin, ReloadMixin):
    def __init__(self, loaded: "LoadedConfig", *, only: Iterable[str] | None = None,
                 clock: Callable[[], float] = time.monotonic, runtime: Runtime | None = None) -> None:
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
        self._mem_watch: dict[int, int] = {}   # incarnation -> pid, for the sampler; replaced too
        self._builds: dict[str, str] = {}      # service -> running | done | failed | cancelled
        self._build_pgid: dict[str, int] = {}
        self._builds_timed_out: set[str] = set()
        self._state_save_pending = False
        self._debounce: dict[str, Any] = {}
        self._reload: Any = None
        self._reload_parsing = False
        self._removing: set[str] = set()
        self._after_turn: list[Callable[[], None]] = []  # side jobs, run after the turn's spawns
        self._systemd_ready = False
        self._strict = os.environ.get("UNIFIED_STRICT") == "1"
        self.owner_errors = 0
        self._systemd_status = ""
        self._shutting_down = False
        self._exit_code = 0
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        # Published for observers (API, metrics, console): replaced whole, never mutated.
        self.snapshot: tuple[dict[str, Any], ...] = ()
        self.health: dict[str, Any] = {}
        self._dirty = True

        services = self.config.services
        self._deps = {n: tuple(s.depends_on) for n, s in services.items()}
        self._dependents = graph.dependents(self._deps)
        self._order = [n for wave in graph.start_waves(self._deps) for n in wave]
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
        self.runtime = runtime or Runtime(self)

    # ------------------------------------------------------------------ threads' door
    def post(self, event: object) -> None:
        self._queue.put(event)

    def on_notify_datagram(self, pid: int, fields: dict[str, str]) -> None:
        """Called on the notify thread: attribute the sender, then hand over to the owner."""
        found = owner_of(pid, self._pid_map)
        if found is not None:
            self.post(Notify(found[1], pid, tuple(fields.items())))

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        self.runtime.open()
        previous = {s: signal.signal(s, lambda n, _f: self.post(Signal(n)))
                    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            self.log.info("supervisor started", pid=os.getpid(), services=len(self.units),
                          config=str(self.loaded.path))
            self._restore()
            interval = self.runtime.systemd_watchdog_interval()
            if interval:
                self._systemd_watchdog(interval)
            self._reconcile()
            self._publish_snapshot()
            self._loop()
            self._save_state(sync=True)
            self.log.info("supervisor stopped", exit_code=self._exit_code)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.runtime.close()
        return self._exit_code

    def _loop(self) -> None:
        while not self._finished():
            deadline = self._timers.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            try:
                self._guarded(self._dispatch, self._queue.get(timeout=timeout))
                while True:  # apply the whole batch before reconciling once
                    self._guarded(self._dispatch, self._queue.get_nowait())
            except queue.Empty:
                pass
            for timer in self._timers.pop_due(self.clock()):
                self._guarded(timer.action)
            self._guarded(self._reconcile)
            self._check_reload()
            if self._dirty:
                self._publish_snapshot()
            while self._after_turn:
                self._after_turn.pop(0)()

    def _publish_snapshot(self) -> None:
        now = self.clock()
        objects = tuple(service_object(name, units, units[0].spec, now)
                        for name, units in self.units.items() if units)
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
        if isinstance(event, Exited):
            self._on_exit(event)
        elif isinstance(event, Notify):
            self._on_notify(event)
        elif isinstance(event, ProbeResult):
            self._on_probe(event)
        elif isinstance(event, Signal):
            self._on_signal(event.signum)
        elif isinstance(event, Command):
            self._on_command(event)
        elif isinstance(event, Samples):
            self._on_samples(event)
        elif isinstance(event, FreezeProven):
            self._on_freeze_proven(event)
        elif isinstance(event, HostAlert):
            self._on_host_alert(event)
        elif isinstance(event, BuildDone):
            self._on_build_done(event)
        elif isinstance(event, FileChanged):
            self._on_file_changed(event)
        elif isinstance(event, ConfigLoaded):
            self._on_config_loaded(event)

    # ------------------------------------------------------------------ the one choke point
    def _transition(self, unit: Unit, new: State, reason: str | None = None,
                    note: str | None = None, **extra: Any) -> None:
        old = unit.state
        if old is new:
            return
        check_transition(old, new)
        unit.state, unit.since, unit.note = new, self.clock(), note
        self._dirty = True
        self._save_state_soon()
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

    # ------------------------------------------------------------------ state.json
    def _restore(self) -> None:
        """Stop what a SIGKILLed predecessor left running, then take over its history."""
        path = self.runtime.state_dir / "state.json"
        saved = statefile.read_state(path, self.log)
        found = statefile.leftovers(saved)
        if found:
            timeout = max((self.config.services[f["service"]].stop.timeout for f in found
                           if f["service"] in self.config.services), default=10.0)
            statefile.stop_leftovers(found, min(timeout, 10.0), self.log)
        now, wall = self.clock(), time.time()
        for name, svc in saved.get("services", {}).items():
            for unit in self.units.get(name, ()):
                unit.restarts = int(svc.get("restarts", 0)) if unit.index == 0 else 0
                unit.ever_spawned = bool(svc.get("ever_spawned", unit.restarts))
                unit.restart_times.extend(now - (wall - t) for t in svc.get("restart_times", [])
                                          if wall - t < unit.spec.restart.window)
                unit.exits.extend(svc.get("crash_history", [])[-20:])
                unit.last_exit = svc.get("last_exit")
                if svc.get("circuit") == "open" and unit.desired_up:
                    unit.circuit = "open"
                    self._transition(unit, S.FATAL, "circuit_open", note="circuit open (restored)")
                    cooldown = unit.spec.restart.cooldown
                    if cooldown is not None:
                        unit.timers["cooldown"] = self._timers.call_at(
                            now + cooldown, lambda u=unit: self._half_open(u))
        self._save_state(sync=True)

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
                "restart_times": [wall - (now - t) for u in units for t in u.restart_times],
                "crash_history": [e for u in units for e in u.exits],
                "instances": [{"index": u.index, "pid": u.pid, "pgid": u.pgid} for u in units if u.pid],
            }
        data = {"format": statefile.FORMAT, "supervisor_pid": os.getpid(), "saved_at": wall,
                "services": services}
        path = self.runtime.state_dir / "state.json"

        def write() -> None:  # create times are read here, off the owner thread
            for svc in data["services"].values():
                for inst in svc["instances"]:
                    inst["create_time"] = statefile.create_time(inst["pid"])
            try:
                statefile.write_atomic(path, data)
            except OSError as exc:  # a full or vanished disk must not kill supervision
                self.log.error("cannot write state.json", path=str(path), error=str(exc))

        if sync:
            write()
        else:
            self.runtime.worker.submit(write)

    def _publish(self, event: dict[str, Any]) -> None:
        event.setdefault("at", time.time())
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
                        elif unit.spec.build is not None and self._builds.get(name) != "done":
                            self._start_build(name)
                        else:
                            self._spawn(unit)
                elif unit.state is S.BUILDING:
                    self._cancel_build(name)
                    self._transition(unit, S.STOPPED, unit.stop_reason or "stop")
                elif unit.state in (S.PENDING, S.BACKOFF):
                    unit.cancel_timers()
                    self._transition(unit, S.STOPPED, unit.stop_reason or "stop")
                elif unit.state in (S.STARTING, S.RUNNING) and not self._dependents_alive(name):
                    self._stop(unit, unit.stop_reason or "stop")

    def _unmet(self, name: str) -> list[str]:
        spec = self.config.services[name]
        return [f"{dep} ({d.condition})" for dep, d in spec.depends_on.items()
                if not meets(self.units[dep], d.condition)]

    def _dependents_alive(self, name: str) -> bool:
        return any(u.state in ALIVE or u.state is S.BUILDING or u.lingering_pgid is not None
                   for dep in self._dependents.get(name, ()) for u in self.units[dep])

    # ------------------------------------------------------------------ spawning
    def _spawn(self, unit: Unit) -> None:
        now = self.clock()
        inc = next(self._incs)
        try:
            spawned = self.runtime.spawn(unit, inc)
        except SpawnError as exc:
            unit.last_exit = {"code": 127, "signal": None, "reason": "crash", "at": time.time()}
            self._transition(unit, S.FATAL, "crash", note=str(exc))
            return
        restarted = unit.ever_spawned
        if restarted:
            unit.restarts += 1
            window = unit.spec.restart.window
            while unit.restart_times and now - unit.restart_times[0] >= window:
                unit.restart_times.popleft()  # only the window matters to the budget
            unit.restart_times.append(now)
        unit.ever_spawned = True
        unit.inc, unit.pid, unit.pgid = inc, spawned.pid, spawned.pgid
        unit.spawned_at, unit.spawned_wall = now, time.time()
        unit.ready, unit.health, unit.status_text = False, "unknown", None
        unit.stop_reason, unit.probes = None, {}
        unit.last_heartbeat, unit.freezing, unit.freeze_report, unit.rss = None, False, None, None
        self._by_inc[inc] = unit
        self._pid_map = {**self._pid_map, spawned.pid: inc}
        self._watch_memory(unit)
        self._transition(unit, S.STARTING, None)
        if restarted:
            reason = (unit.last_exit or {}).get("reason") or "crash"
            self.runtime.metrics.restart(unit.service, reason)
            self._publish({"type": "restart", "service": unit.service, "instance": unit.index,
                           "reason": reason, "restarts": unit.restarts, "pid": unit.pid})
            self._cascade_restart(unit.service)
        spec = unit.spec
        unit.timers["reset"] = self._timers.call_at(now + spec.restart.reset_after,
                                                    lambda: self._stayed_up(unit, inc))
        if spec.readiness is None:
            self._became_ready(unit)
        elif spec.readiness.kind != "notify":
            self._schedule_probe(unit, "readiness", spec.readiness.initial_delay)
        if spec.startup is not None:
            self._schedule_probe(unit, "startup", spec.startup.initial_delay)
        elif spec.liveness is not None:
            self._schedule_probe(unit, "liveness", spec.liveness.initial_delay)

    def _became_ready(self, unit: Unit) -> None:
        unit.ready, unit.health, self._dirty = True, "healthy", True
        if unit.state is S.STARTING:
            self._transition(unit, S.RUNNING, None)
        self._arm_heartbeat(unit)  # the heartbeat deadline starts at readiness at the latest
        if unit.predecessor is not None:
            self._roll_over(unit)

    def _cascade_restart(self, name: str) -> None:
        """depends_on {x: {restart: true}}: when x restarts, its dependents follow (rest_for_one)."""
        for dependent in self._dependents.get(name, ()):
            dep = self.config.services[dependent].depends_on[name]
            if dep.restart:
                for unit in self.units[dependent]:
                    if unit.state in (S.STARTING, S.RUNNING):
                        self._restart(unit, "dependency")

    def _stayed_up(self, unit: Unit, inc: int) -> None:
        if unit.inc == inc:
            unit.failures = 0
            if unit.circuit != "closed":
                unit.circuit = "closed"
                self.log.info("circuit closed", service=unit.service)
                self._publish({"type": "recovered", "service": unit.service})

    # ------------------------------------------------------------------ stopping
    def _stop(self, unit: Unit, reason: str, sig: signal.Signals | None = ...,
              grace: float | None = None) -> None:
        """Signal the group (or not: sig=None when the caller already did), then SIGKILL later."""
        if unit.pid is None or unit.state is S.STOPPING:
            return
        unit.stop_reason = reason
        unit.cancel_timers("probe:")
        unit.cancel_timer("hb")
        if sig is ...:
            sig = signal.Signals[unit.spec.stop.signal]
        if sig is not None:
            self.runtime.seam.signal_group(unit.pgid, sig)
        self._transition(unit, S.STOPPING, reason, signal=sig.name if sig else None)
        inc = unit.inc
        grace = unit.spec.stop.timeout if grace is None else grace
        unit.timers["kill"] = self._timers.call_at(self.clock() + grace, lambda: self._kill(unit, inc))

    def _kill(self, unit: Unit, inc: int) -> None:
        pgid = unit.pgid if unit.inc == inc else unit.lingering_pgid
        if pgid is not None:
            self.log.warning("stop timeout, killing group", service=unit.service, pgid=pgid,
                             timeout=unit.spec.stop.timeout)
            self.runtime.seam.signal_group(pgid, signal.SIGKILL)

    def _check_linger(self, unit: Unit) -> None:
        pgid = unit.lingering_pgid
        if pgid is not None and self.runtime.seam.group_alive(pgid):
            unit.timers["linger"] = self._timers.call_at(self.clock() + LINGER_CHECK,
                                                         lambda: self._check_linger(unit))
            return
        unit.lingering_pgid = None
        unit.cancel_timers()
        self._after_stop(unit)

    # ------------------------------------------------------------------ exits
    def _on_exit(self, ev: Exited) -> None:
        unit = self._by_inc.pop(ev.inc, None)
        if unit is None or unit.inc != ev.inc:
            return  # a late exit of an older incarnation never touches its replacement
        now = self.clock()
        self._pid_map = {p: i for p, i in self._pid_map.items() if i != ev.inc}
        uptime = now - (unit.spawned_at or now)
        reason = unit.stop_reason or "crash"
        classification = self._classify(unit, ev.status, reason)
        unit.last_exit = {"code": ev.status.code, "signal": ev.status.signal_name,
                          "reason": reason, "at": time.time(), "description": classification}
        unit.exits.append({**unit.last_exit, "uptime_seconds": round(uptime, 3)})
        level = "warning" if reason in ("crash", "freeze", "memory", "liveness") and not ev.status.ok else "info"
        getattr(self.log, level)("exited", service=unit.service, pid=unit.pid, reason=reason,
                                 code=ev.status.code, signal=ev.status.signal_name,
                                 uptime=round(uptime, 3), description=classification)
        self._crash_dump(unit, ev.status, reason, uptime, unit.pid, classification)
        unit.last_uptime = uptime
        if unit.predecessor is not None:   # the new incarnation of a rolling restart died
            self.log.warning("rolling restart aborted: the new incarnation failed; the old one "
                             "keeps serving", service=unit.service, instance=unit.index)
            unit.predecessor.successor, unit.predecessor = None, None
            unit.retiring, unit.desired_up = True, False
        elif unit.successor is not None:   # the old one died while its successor was starting
            unit.successor.predecessor, unit.successor = None, None
            unit.retiring, unit.desired_up = True, False
        pgid = unit.pgid
        unit.inc, unit.pid, unit.ready, unit.freezing = 0, None, False, False
        self._watch_memory(unit)
        unit.cancel_timers()
        if pgid is not None and self.runtime.seam.group_alive(pgid):
            if unit.state is S.STOPPING:
                unit.lingering_pgid = pgid   # the stop signal reached them; give them the timeout
                unit.timers["kill"] = self._timers.call_at(
                    unit.since + unit.spec.stop.timeout, lambda: self._kill(unit, -1))
                self._check_linger(unit)
                return
            # The leader died on its own: what it left in its group belongs to the dead incarnation.
            self.runtime.seam.signal_group(pgid, signal.SIGKILL)
        if unit.state is S.STOPPING:
            self._after_stop(unit)
        else:
            self._after_crash(unit, ev.status, uptime, now)

    def _after_stop(self, unit: Unit) -> None:
        if unit.desired_up and unit.then_start:
            unit.then_start = False
            reason = (unit.last_exit or {}).get("reason")
            if reason in ("manual", "dependency", "watch", "reload"):
                self._transition(unit, S.PENDING, reason)
            else:  # liveness, freeze, memory, notify: failures, so they back off
                if unit.last_uptime >= unit.spec.restart.reset_after:
                    unit.failures = 0
                self._schedule_restart(unit, self.clock(), unit.last_uptime, reason)
        elif unit.desired_up:
            self._transition(unit, S.PENDING, "restart")
        else:
            self._transition(unit, S.STOPPED, (unit.last_exit or {}).get("reason"))

    def _after_crash(self, unit: Unit, status: policy.ExitStatus, uptime: float, now: float) -> None:
        if not unit.desired_up:
            self._transition(unit, S.STOPPED, "stop")
        elif status.code in policy.NOT_STARTABLE:
            what = "not executable" if status.code == 126 else "command not found"
            said = self.runtime.explain_not_startable(unit)  # rare path: small reads are fine
            self._transition(unit, S.FATAL, "crash", note=f"exit {status.code}: {what}; not retried"
                             + (f" ({said})" if said else ""))
        elif policy.should_restart(unit.spec.restart.policy, status):
            if uptime >= unit.spec.restart.reset_after:
                unit.failures = 0
            self._schedule_restart(unit, now, uptime, "crash")
        else:
            self._transition(unit, S.EXITED, "crash", code=status.code)

    def _schedule_restart(self, unit: Unit, now: float, uptime: float, reason: str) -> None:
        r = unit.spec.restart
        unit.failures += 1
        if unit.circuit == "half-open" or policy.budget_spent(
                [*unit.restart_times, now], now, r.window, r.max_restarts):
            self._open_circuit(unit, now)
            return
        delay = policy.next_delay(unit.failures, r.backoff.initial, r.backoff.max,
                                  r.backoff.multiplier, r.backoff.jitter, self._rand.random())
        if delay <= 0:
            self._transition(unit, S.PENDING, reason)
            return
        self._transition(unit, S.BACKOFF, reason, delay=round(delay, 3))
        unit.timers["backoff"] = self._timers.call_at(now + delay, lambda: self._backoff_over(unit))

    def _backoff_over(self, unit: Unit) -> None:
        unit.timers.pop("backoff", None)
        if unit.state is S.BACKOFF:
            self._transition(unit, S.PENDING, "backoff")

    def _open_circuit(self, unit: Unit, now: float) -> None:
        r = unit.spec.restart
        unit.circuit = "open"
        note = f"circuit open: more than {r.max_restarts} restarts within {r.window:g}s"
        self._transition(unit, S.FATAL, "circuit_open", note=note)
        self._publish({"type": "circuit_open", "service": unit.service})
        if r.cooldown is not None:
            unit.timers["cooldown"] = self._timers.call_at(now + r.cooldown, lambda: self._half_open(unit))

    def _half_open(self, unit: Unit) -> None:
        unit.timers.pop("cooldown", None)
        if unit.state is S.FATAL and unit.desired_up:
            unit.circuit = "half-open"
            self._transition(unit, S.PENDING, "half-open")

    # ------------------------------------------------------------------ probes and notify
    def _schedule_probe(self, unit: Unit, kind: str, delay: float) -> None:
        inc = unit.inc
        unit.timers[f"probe:{kind}"] = self._timers.call_at(
            self.clock() + delay, lambda: self._start_probe(unit, kind, inc))

    def _start_probe(self, unit: Unit, kind: str, inc: int) -> None:
        unit.timers.pop(f"probe:{kind}", None)
        if unit.inc == inc and unit.state in (S.STARTING, S.RUNNING):
            self.runtime.run_probe(unit, kind, getattr(unit.spec, kind))

    def _on_probe(self, ev: ProbeResult) -> None:
        unit = self._by_inc.get(ev.inc)
        if unit is None or unit.state not in (S.STARTING, S.RUNNING):
            return
        probe = getattr(unit.spec, ev.kind)
        track = unit.probes.setdefault(ev.kind, ProbeTrack())
        if ev.ok:
            track.successes, track.failures = track.successes + 1, 0
        else:
            track.successes, track.failures = 0, track.failures + 1
        if track.last_ok is not ev.ok:
            self._publish({"type": "probe", "service": unit.service, "probe": ev.kind,
                           "ok": ev.ok, "detail": ev.detail})
        track.last_ok, track.detail = ev.ok, ev.detail
        self.runtime.metrics.probe(unit.service, ev.kind, ev.duration)
        next_period = probe.period
        if ev.kind == "readiness":
            if ev.ok and track.successes >= probe.success_threshold and not unit.ready:
                self._became_ready(unit)
            elif not ev.ok and track.failures >= probe.failure_threshold and unit.ready:
                unit.ready, unit.health, self._dirty = False, "unhealthy", True
        elif not ev.ok and track.failures >= probe.failure_threshold:
            self.log.warning("probe failed", service=unit.service, probe=ev.kind, detail=ev.detail)
            self._restart(unit, "liveness")
            return
        elif ev.ok and ev.kind == "startup":
            track.passed_once = True
            if unit.spec.liveness is not None:
                self._schedule_probe(unit, "liveness", unit.spec.liveness.initial_delay)
            return  # a startup probe runs until it first passes, then hands over to liveness
        self._schedule_probe(unit, ev.kind, next_period)

    def _on_notify(self, ev: Notify) -> None:
        unit = self._by_inc.get(ev.inc)
        if unit is None:
            return
        fields = dict(ev.fields)
        if "STATUS" in fields:
            unit.status_text, self._dirty = fields["STATUS"][:200], True
        if fields.get("READY") == "1":
            readiness = unit.spec.readiness
            if readiness is not None and readiness.kind == "notify" and not unit.ready:
                self._became_ready(unit)
        if fields.get("WATCHDOG") == "1":
            self._heartbeat(unit)
        if "EXTEND_TIMEOUT_USEC" in fields:
            self._extend(unit, fields["EXTEND_TIMEOUT_USEC"])
        if fields.get("STOPPING") == "1":
            unit.note, self._dirty = "the service said it is stopping", True
        if fields.get("RELOADING") == "1" and unit.spec.readiness and unit.spec.readiness.kind == "notify":
            unit.ready, self._dirty = False, True  # systemd semantics: not ready until READY=1 again
        if fields.get("WATCHDOG") == "trigger":
            self.log.warning("service asked to be restarted (WATCHDOG=trigger)", service=unit.service)
            self._restart(unit, "notify")

    def _extend(self, unit: Unit, usec: str) -> None:
        try:
            extra = int(usec) / 1_000_000
        except ValueError:
            return
        if unit.state is S.STOPPING and "kill" in unit.timers:
            inc = unit.inc
            unit.cancel_timer("kill")
            unit.timers["kill"] = self._timers.call_at(self.clock() + extra, lambda: self._kill(unit, inc))
        else:
            self._heartbeat(unit, extend=extra)

    # ------------------------------------------------------------------ commands
    def _restart(self, unit: Unit, reason: str) -> None:
        if unit.pid is None:
            return
        if (unit.spec.listen or unit.spec.instances > 1) and not self._shutting_down:
            self._roll(unit, reason)
            return
        unit.then_start = True
        self._stop(unit, reason)

    def _roll(self, unit: Unit, reason: str) -> None:
        """Rolling restart: the new incarnation starts beside the old one (they share the held
        sockets), and the old one is stopped only once the new one is ready."""
        if unit.successor is not None or unit.predecessor is not None:
            return
        new = Unit(unit.service, unit.index, unit.spec)
        for attr in ("restarts", "failures", "circuit", "ever_spawned"):
            setattr(new, attr, getattr(unit, attr))
        new.restart_times.extend(unit.restart_times)
        new.exits.extend(unit.exits)
        new.last_exit = {"code": None, "signal": None, "reason": reason, "at": time.time(),
                         "description": "rolling restart"}
        new.predecessor, unit.successor, unit.roll_reason = unit, new, reason
        self.units[unit.service].append(new)
        self.log.info("rolling restart: starting the new incarnation first", service=unit.service,
                      instance=unit.index, reason=reason, old_pid=unit.pid)

    def _roll_over(self, new: Unit) -> None:
        old, new.predecessor = new.predecessor, None
        old.successor, old.retiring, old.desired_up = None, True, False
        self.log.info("rolling restart: new incarnation ready, stopping the old one",
                      service=new.service, instance=new.index, old_pid=old.pid, new_pid=new.pid)
        self._stop(old, old.roll_reason or "manual")

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            try:
                self._cmd_reload(Command("reload"))
            except ReloadInProgress as exc:
                self.log.warning("SIGHUP ignored", reason=str(exc))
            return
        name = signal.Signals(signum).name
        if self._shutting_down:
            if signum == signal.SIGINT:
                self.log.warning("second SIGINT: killing every process group now")
                self._kill_all()
            return
        self.log.info("shutting down", signal=name)
        self.shutdown()

    def shutdown(self) -> None:
        self._shutting_down = True
        self.runtime.signal_systemd("STOPPING=1")
        for unit in (u for us in self.units.values() for u in us):
            unit.desired_up, unit.then_start = False, False
            if unit.stop_reason is None and unit.alive:
                unit.stop_reason = "stop"
        budget = self.config.supervisor.shutdown_timeout
        self._timers.call_at(self.clock() + budget, self._shutdown_overdue)

    def _shutdown_overdue(self) -> None:
        self.log.warning("shutdown_timeout reached: killing what is left",
                         timeout=self.config.supervisor.shutdown_timeout)
        self._kill_all()

    def _kill_all(self) -> None:
        for unit in (u for us in self.units.values() for u in us):
            for pgid in {unit.pgid if unit.pid else None, unit.lingering_pgid} - {None}:
                self.runtime.seam.signal_group(pgid, signal.SIGKILL)
            if unit.state in (S.STARTING, S.RUNNING):
                unit.stop_reason = unit.stop_reason or "stop"
                self._transition(unit, S.STOPPING, "stop")

    def _on_command(self, cmd: Command) -> None:
        handler = {"start": self._cmd_start, "stop": self._cmd_stop,
                   "restart": self._cmd_restart, "heartbeat": self._cmd_heartbeat,
                   "reload": lambda _n: self._cmd_reload(cmd),
                   "shutdown": lambda _n: self.shutdown()}.get(cmd.action)
        try:
            if handler is None:
                raise ValueError(f"unknown command {cmd.action!r}")
            if cmd.service is not None and cmd.service not in self.units:
                raise KeyError(cmd.service)
            result = handler(cmd.service)
        except Exception as exc:  # a bad command must never take the owner down
            if cmd.reply is not None:
                cmd.reply.set_exception(exc)
            return
        if cmd.reply is not None and result is not DEFERRED:
            cmd.reply.set_result(result)

    def _cmd_start(self, name: str) -> None:
        """Start a service and what it needs (systemd's Requires=), unless disabled."""
        for dep in graph.closure(self._deps, [name]):
            for unit in self.units[dep]:
                if unit.state is S.DISABLED:
                    continue
                unit.desired_up, unit.then_start = True, False
                if unit.state in (S.STOPPED, S.EXITED, S.FATAL):
                    if self._builds.get(dep) in ("failed", "cancelled"):
                        self._builds.pop(dep)  # a start after a failed build tries the build again
                    unit.cancel_timers()
                    unit.circuit, unit.failures = "closed", 0
                    self._transition(unit, S.PENDING, "manual")

    def _cmd_stop(self, name: str) -> None:
        """Stop a service and, first, everything that depends on it."""
        for dep in graph.closure(self._dependents, [name]):
            for unit in self.units[dep]:
                unit.desired_up, unit.then_start = False, False
                if unit.alive and unit.stop_reason is None:
                    unit.stop_reason = "manual"

    def _cmd_heartbeat(self, name: str) -> None:
        """An HTTP heartbeat (the API checked the service's token): WATCHDOG=1 for each instance."""
        for unit in self.units[name]:
            if unit.inc:
                self._on_notify(Notify(unit.inc, unit.pid or 0, (("WATCHDOG", "1"),)))

    def _cmd_restart(self, name: str) -> None:
        self._cmd_start(name)  # brings up what is down, and what it depends on
        for unit in self.units[name]:
            if unit.pid is not None and unit.state in (S.STARTING, S.RUNNING):
                self._restart(unit, "manual")
