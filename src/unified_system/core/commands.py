"""Operator commands and signals: start, stop, restart (rolling when the service holds
sockets or runs several instances), reload, heartbeat, shutdown."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from unified_system import graph
from unified_system.core.builds import Builds
from unified_system.core.events import Command, Notify, Refused, Signal
from unified_system.core.lifecycle import Lifecycle
from unified_system.core.ports import Effects
from unified_system.core.probing import Probing
from unified_system.core.reasons import Reason
from unified_system.core.reloading import DEFERRED, Reloading, ReloadInProgress
from unified_system.core.states import State
from unified_system.core.table import Services
from unified_system.core.timers import TimerHeap
from unified_system.core.unit import Unit

S = State
UNDO_SHUTDOWN = ("start", "restart", "reload")  # each would bring something back up


class Commands:
    def __init__(self, table: Services, timers: TimerHeap, effects: Effects, clock: Callable[[], float],
                 log: Any, lifecycle: Lifecycle, builds: Builds, probing: Probing,
                 reloading: Reloading) -> None:
        self.table, self.timers, self.effects, self.clock, self.log = table, timers, effects, clock, log
        self.lifecycle, self.builds, self.probing, self.reloading = lifecycle, builds, probing, reloading
        self.exit_code = 0
        self._handlers: dict[str, Callable[[Command], object]] = {
            "start": lambda c: self.start(_named(c)), "stop": lambda c: self.stop(_named(c)),
            "restart": lambda c: self.restart(_named(c)), "heartbeat": lambda c: self.heartbeat(_named(c)),
            "reload": lambda c: self.reloading.reload(c), "shutdown": lambda c: self.shutdown()}
        table.on_transition.append(self._critical_fatal)

    # ------------------------------------------------------------------ signals and shutdown
    def on_signal(self, ev: Signal) -> None:
        signum = ev.signum
        if signum == signal.SIGHUP:
            if self.table.shutting_down:
                self.log.warning("SIGHUP ignored", reason="shutting down")
                return
            try:
                self.reloading.reload(Command("reload"))
            except ReloadInProgress as exc:
                self.log.warning("SIGHUP ignored", reason=str(exc))
            return
        if self.table.shutting_down:
            if signum == signal.SIGINT:
                self.log.warning("second SIGINT: killing every process group now")
                self._kill_all()
            return
        self.log.info("shutting down", signal=signal.Signals(signum).name)
        self.shutdown()

    def shutdown(self) -> None:
        """Every unit's desired state becomes down; reconcile stops dependents first."""
        self.table.shutting_down = True
        self.effects.signal_systemd("STOPPING=1")
        for unit in self.table.all():
            unit.desired_up, unit.then_start = False, False
            if unit.stop_reason is None and unit.alive:
                unit.stop_reason = Reason.STOP
        budget = self.table.config.supervisor.shutdown_timeout
        self.timers.call_at(self.clock() + budget, self._shutdown_overdue)

    def _critical_fatal(self, unit: Unit, old: State, new: State) -> None:
        if (new is S.FATAL and unit.spec.critical and not self.table.shutting_down
                and self.table.config.supervisor.exit_on_critical_failure):
            self.log.error("critical service is fatal: stopping everything",
                           service=unit.service, note=unit.note)
            self.exit_code = 1
            self.shutdown()

    def _shutdown_overdue(self) -> None:
        self.log.warning("shutdown_timeout reached: killing what is left",
                         timeout=self.table.config.supervisor.shutdown_timeout)
        self._kill_all()

    def _kill_all(self) -> None:
        for unit in self.table.all():
            for pgid in {g for g in (unit.pgid if unit.pid else None, unit.lingering_pgid) if g is not None}:
                self.effects.signal_group(pgid, signal.SIGKILL)
            if unit.state in (S.STARTING, S.RUNNING):
                unit.stop_reason = unit.stop_reason or Reason.STOP
                self.table.transition(unit, S.STOPPING, "stop")

    # ------------------------------------------------------------------ commands
    def on_command(self, cmd: Command) -> None:
        handler = self._handlers.get(cmd.action)
        try:
            if handler is None:
                raise ValueError(f"unknown command {cmd.action!r}")
            if cmd.service is not None and cmd.service not in self.table.units:
                raise KeyError(cmd.service)
            if self.table.shutting_down and cmd.action in UNDO_SHUTDOWN:
                raise Refused(f"shutting down: {cmd.action} refused")
            result = handler(cmd)
        except Exception as exc:  # a bad command must never take the owner down
            if cmd.reply is not None:
                cmd.reply.set_exception(exc)
            return
        if cmd.reply is not None and result is not DEFERRED:
            cmd.reply.set_result(result)

    def start(self, name: str) -> None:
        """Start a service and what it needs (systemd's Requires=), unless disabled."""
        for dep in graph.closure(self.table.deps, [name]):
            for unit in self.table.units[dep]:
                if unit.state is S.DISABLED or unit.retiring:  # a retiring unit only goes
                    continue
                unit.desired_up, unit.then_start = True, False
                if unit.state in (S.STOPPED, S.EXITED, S.FATAL):
                    self.builds.retry(dep)  # a start after a failed build tries the build again
                    unit.fresh_start()
                    self.table.transition(unit, S.PENDING, "manual")

    def stop(self, name: str) -> None:
        """Stop a service and, first, everything that depends on it."""
        for dep in graph.closure(self.table.dependents, [name]):
            for unit in self.table.units[dep]:
                unit.desired_up, unit.then_start = False, False
                if unit.alive and unit.stop_reason is None:
                    unit.stop_reason = Reason.MANUAL

    def heartbeat(self, name: str) -> None:
        """An HTTP heartbeat (the API checked the service's token): WATCHDOG=1 for each instance."""
        for unit in self.table.units[name]:
            if unit.inc:
                self.probing.on_notify(Notify(unit.inc, unit.pid or 0, (("WATCHDOG", "1"),)))

    def restart(self, name: str) -> None:
        self.start(name)  # brings up what is down, and what it depends on
        for unit in self.table.units[name]:
            if unit.pid is not None and unit.state in (S.STARTING, S.RUNNING) and not unit.retiring:
                self.lifecycle.restart(unit, Reason.MANUAL)


def _named(cmd: Command) -> str:
    if cmd.service is None:
        raise ValueError(f"{cmd.action} needs a service")
    return cmd.service
