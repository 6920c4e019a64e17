"""Operator commands and signals, as an owner mixin: start, stop, restart (rolling when the
service holds sockets or runs several instances: rollout.py), shutdown."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from unified_system import graph
from unified_system.core.events import Command, Notify, Refused
from unified_system.core.owner import Owner
from unified_system.core.reasons import Reason
from unified_system.core.reloading import DEFERRED, ReloadInProgress
from unified_system.core.states import State
from unified_system.core.unit import Unit

S = State
UNDO_SHUTDOWN = ("start", "restart", "reload")  # each would bring something back up


class CommandMixin(Owner):
    # ------------------------------------------------------------------ commands
    def _restart(self, unit: Unit, reason: Reason) -> None:
        if unit.pid is None:
            return
        # A failing process (liveness, memory, notify) is replaced the plain way, through
        # backoff and the circuit breaker; only planned restarts roll.
        if ((unit.spec.listen or unit.spec.instances > 1) and reason.planned
                and not self._shutting_down):
            self._roll(unit, reason)
            return
        unit.then_start = True
        self._stop(unit, reason)

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            if self._shutting_down:
                self.log.warning("SIGHUP ignored", reason="shutting down")
                return
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
                unit.stop_reason = Reason.STOP
        budget = self.config.supervisor.shutdown_timeout
        self._timers.call_at(self.clock() + budget, self._shutdown_overdue)

    def _shutdown_overdue(self) -> None:
        self.log.warning("shutdown_timeout reached: killing what is left",
                         timeout=self.config.supervisor.shutdown_timeout)
        self._kill_all()

    def _kill_all(self) -> None:
        for unit in (u for us in self.units.values() for u in us):
            for pgid in {g for g in (unit.pgid if unit.pid else None, unit.lingering_pgid) if g is not None}:
                self.runtime.signal_group(pgid, signal.SIGKILL)
            if unit.state in (S.STARTING, S.RUNNING):
                unit.stop_reason = unit.stop_reason or Reason.STOP
                self._transition(unit, S.STOPPING, "stop")

    def _on_command(self, cmd: Command) -> None:
        handler: Callable[[Any], object] | None = {"start": self._cmd_start, "stop": self._cmd_stop,
                   "restart": self._cmd_restart, "heartbeat": self._cmd_heartbeat,
                   "reload": lambda _n: self._cmd_reload(cmd),
                   "shutdown": lambda _n: self.shutdown()}.get(cmd.action)
        try:
            if handler is None:
                raise ValueError(f"unknown command {cmd.action!r}")
            if cmd.service is not None and cmd.service not in self.units:
                raise KeyError(cmd.service)
            if self._shutting_down and cmd.action in UNDO_SHUTDOWN:
                raise Refused(f"shutting down: {cmd.action} refused")
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
                if unit.state is S.DISABLED or unit.retiring:  # a retiring unit only goes
                    continue
                unit.desired_up, unit.then_start = True, False
                if unit.state in (S.STOPPED, S.EXITED, S.FATAL):
                    self.builds.retry(dep)  # a start after a failed build tries the build again
                    unit.fresh_start()
                    self._transition(unit, S.PENDING, "manual")

    def _cmd_stop(self, name: str) -> None:
        """Stop a service and, first, everything that depends on it."""
        for dep in graph.closure(self._dependents, [name]):
            for unit in self.units[dep]:
                unit.desired_up, unit.then_start = False, False
                if unit.alive and unit.stop_reason is None:
                    unit.stop_reason = Reason.MANUAL

    def _cmd_heartbeat(self, name: str) -> None:
        """An HTTP heartbeat (the API checked the service's token): WATCHDOG=1 for each instance."""
        for unit in self.units[name]:
            if unit.inc:
                self.probing.on_notify(Notify(unit.inc, unit.pid or 0, (("WATCHDOG", "1"),)))

    def _cmd_restart(self, name: str) -> None:
        self._cmd_start(name)  # brings up what is down, and what it depends on
        for unit in self.units[name]:
            if unit.pid is not None and unit.state in (S.STARTING, S.RUNNING) and not unit.retiring:
                self._restart(unit, Reason.MANUAL)
