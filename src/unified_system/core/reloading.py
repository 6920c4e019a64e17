"""Reloads: file changes restart a service (reason `watch`); a config reload is parsed off
the owner, diffed, applied, and rolled back per service when a changed service does not come
up within its start window (reload_diff.py holds the pure parts: the diff, the window)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unified_system.config.view import replace
from unified_system.core.builds import Builds
from unified_system.core.events import CONFIG_KEY, Command, ConfigLoaded, FileChanged, Refused
from unified_system.core.lifecycle import Lifecycle
from unified_system.core.ports import Effects
from unified_system.core.reasons import Reason
from unified_system.core.reload_diff import PendingReload, diff_services, start_window
from unified_system.core.states import AT_REST, State
from unified_system.core.table import Services
from unified_system.core.timers import Timer, TimerHeap
from unified_system.core.unit import Unit

if TYPE_CHECKING:
    from unified_system.config import LoadedConfig

S = State
CONFIG_DEBOUNCE = 0.5
RELOAD_PARSE_TIMEOUT = 60.0  # YAML, .env, validation and PATH lookups, in a helper process
DEFERRED = object()  # a command handler's answer: the reply will be set later


class ReloadInProgress(Refused):
    pass


class Reloading:
    def __init__(self, table: Services, timers: TimerHeap, effects: Effects, clock: Callable[[], float],
                 log: Any, lifecycle: Lifecycle, builds: Builds, post: Callable[[object], None]) -> None:
        self.table, self.timers, self.effects, self.clock, self.log = table, timers, effects, clock, log
        self.lifecycle, self.builds, self.post = lifecycle, builds, post
        self.debounce: dict[str, Timer] = {}
        self.pending: PendingReload | None = None   # applied; its changed services on their way up
        self.parsing = False                        # the new file is being read and validated
        lifecycle.rollouts.on_failed.append(self.rollout_failed)

    @property
    def busy(self) -> bool:
        """While this holds, the loop calls check() after each turn."""
        return self.pending is not None or bool(self.table.removing) or self.table.retiring

    # ------------------------------------------------------------------ file changes
    def on_file_changed(self, ev: FileChanged) -> None:
        if ev.key == CONFIG_KEY:
            debounce = CONFIG_DEBOUNCE
        else:  # a change queued before a reload removed the service, or its `watch`
            spec = self.table.config.services.get(ev.key)
            if ev.key not in self.table.units or spec is None or spec.watch is None:
                return
            debounce = spec.watch.debounce
        timer = self.debounce.pop(ev.key, None)
        if timer is not None:
            timer.cancel()
        self.debounce[ev.key] = self.timers.call_at(
            self.clock() + debounce, lambda: self._changed(ev.key, ev.path))

    def _changed(self, key: str, path: str) -> None:
        self.debounce.pop(key, None)
        if key == CONFIG_KEY:
            if self.table.shutting_down:
                return
            self.log.info("config file changed: reloading", path=path)
            try:
                self.reload(Command("reload"))
            except ReloadInProgress:  # it may have read the file before this change: try again
                self.debounce[key] = self.timers.call_at(
                    self.clock() + CONFIG_DEBOUNCE, lambda: self._changed(key, path))
            return
        self.log.info("watched file changed: restarting", service=key, path=path)
        for unit in self.table.units.get(key, ()):
            if unit.state in (S.STARTING, S.RUNNING):
                self.lifecycle.restart(unit, Reason.WATCH)

    def watch_services(self, names: Any) -> None:
        if self.effects.watcher is None:
            if any(s.watch is not None and s.enabled for s in self.table.config.services.values()):
                self.effects.open_watcher()   # the first watch, added by a reload: it watches all
                self.watch_services(list(self.table.config.services))
            return
        for name in names:
            self.effects.watcher.unwatch(name)
            spec = self.table.config.services.get(name)
            if spec is not None and spec.watch is not None and spec.enabled:
                self.effects.watcher.watch(name, spec.watch.paths, spec.watch.ignore)

    # ------------------------------------------------------------------ config reload
    def reload(self, cmd: Command) -> object:
        if self.pending is not None or self.parsing:
            raise ReloadInProgress("a reload is already in progress")
        self.parsing = True
        self.effects.signal_systemd("RELOADING=1")
        path, env_name = self.table.loaded.path, self.table.loaded.env_name
        # The helper finds busy the ports this supervisor holds; a service keeps its own
        held = self.effects.held_ports()

        def parse() -> None:  # on the worker, in a helper process (config/apart.py)
            from unified_system.config.apart import HELPER_CWD, helper_argv, helper_env, read_answer
            from unified_system.config.checks import not_held
            from unified_system.config.errors import ConfigErrors
            try:
                done = self.effects.run_helper(helper_argv(path, env_name), env=helper_env(),
                                             cwd=HELPER_CWD, timeout=RELOAD_PARSE_TIMEOUT)
                loaded, busy = read_answer(done.returncode, done.stdout, done.stderr)
                busy = not_held(busy, loaded.config, held)
                if busy:
                    raise ConfigErrors(busy)
                self.post(ConfigLoaded(loaded, None, cmd.reply))
            except Exception as exc:  # ConfigErrors, or a file that vanished mid-edit
                self.post(ConfigLoaded(None, exc, cmd.reply))

        self.effects.submit(parse)
        return DEFERRED

    def on_config_loaded(self, ev: ConfigLoaded) -> None:
        self.parsing = False
        if self.table.shutting_down:  # a reload would bring services back up
            if ev.reply is not None:
                ev.reply.set_exception(Refused("shutting down: the reload was not applied"))
            return
        if ev.errors is not None:
            self.effects.metrics.reload("failure")
            self.log.error("reload refused: the new config is invalid; nothing changed",
                           errors=[str(e) for e in getattr(ev.errors, "errors", [ev.errors])])
            self.table.publish({"type": "reload", "service": None, "result": "invalid"})
            self.effects.signal_systemd("READY=1")
            if ev.reply is not None:
                ev.reply.set_exception(ev.errors)
            return
        self._apply(ev.loaded, ev.reply)

    def _apply(self, loaded: LoadedConfig, reply: Any) -> None:
        old = dict(self.table.config.services)
        diff = diff_services(old, loaded.config.services)
        self.table.set_config(loaded.config, loaded)
        now = self.clock()
        for name in diff.removed:
            for unit in self.table.units[name]:
                unit.desired_up, unit.then_start = False, False
                unit.stop_reason = unit.stop_reason or Reason.RELOAD
            self.table.removing.add(name)
        # Removed by an earlier reload and still stopping: its units stay, and take the new spec
        revived = [name for name in diff.added if name in self.table.removing]
        self.table.removing.difference_update(revived)
        self.table.rebuild_graph()  # after `removing` is known: removed services stay reconciled
        for name in diff.added:
            spec = self.table.config.services[name]
            if name in revived:
                self._respec(name, spec, Reason.RELOAD)
                continue
            self.table.units[name] = [Unit(name, i, spec, desired_up=spec.enabled,
                                     state=S.PENDING if spec.enabled else S.DISABLED)
                                for i in range(spec.instances)]
            self.effects.add_service(name)
            self.effects.metrics.define(name)
        for name in diff.changed:
            self._respec(name, self.table.config.services[name], Reason.RELOAD)
        self.watch_services([*diff.added, *diff.changed, *diff.removed])
        self.effects.hide_secrets()   # before the new services' first line reaches the console
        self.log.info("config reloaded", **diff.as_dict())
        self.table.publish({"type": "reload", "service": None, "result": "applied", **diff.as_dict()})
        self.effects.metrics.reload("success")
        self.pending = PendingReload(diff, {n: old[n] for n in diff.changed},
                                     {n: now + start_window(self.table.config.services[n])
                                      for n in diff.changed if self.table.config.services[n].enabled},
                                     reply)
        self.table.dirty = True

    def _respec(self, name: str, spec: Any, reason: Reason) -> None:
        """Give a service a new definition: running units restart with it (rolling when it
        holds sockets or has several instances), the others just take it."""
        units = self.table.units[name]
        # By index, not by place: a rolling restart lists two units for one instance.
        live = [u for u in units if not u.retiring]
        for unit in live:
            if unit.index >= spec.instances:        # fewer instances: the extras go
                unit.desired_up, unit.stop_reason = False, reason
                unit.retiring = self.table.retiring = True
        have = {u.index for u in live}
        for index in range(spec.instances):        # more instances: new ones start
            if index not in have:
                units.append(Unit(name, index, spec, desired_up=spec.enabled))
        for unit in [u for u in units if not u.retiring and u.index < spec.instances]:
            unit.spec = spec
            if not spec.enabled:
                unit.desired_up = False
                continue
            unit.desired_up = True
            if unit.successor is not None:  # the old one of a roll: its successor replaces it
                continue
            if unit.predecessor is not None:  # the new one, not ready yet: again, with this spec
                if unit.pid is not None:
                    unit.then_start = True
                    self.lifecycle.stop(unit, reason)
                continue
            if unit.state in (S.STARTING, S.RUNNING):
                self.lifecycle.restart(unit, reason)
            elif unit.state in (S.FATAL, S.EXITED, S.STOPPED, S.DISABLED):
                unit.fresh_start()
                self.table.transition(unit, S.PENDING, reason)
        self.effects.reset_service(name)

    # ------------------------------------------------------------------ reload outcome
    def check(self) -> None:
        """Called each loop turn: remove what is gone, and judge changed services."""
        for name in [n for n in self.table.removing if self.table.at_rest(n)]:
            self.table.removing.discard(name)
            del self.table.units[name]
            self.effects.remove_service(name)  # its log fd, sockets, series and histories
            if self.effects.watcher is not None:
                self.effects.watcher.unwatch(name)
            timer = self.debounce.pop(name, None)
            if timer is not None:
                timer.cancel()
            self.builds.forget(name)
            self.table.rebuild_graph()
            self.table.dirty = self.table.reconcile_due = True
        if self.table.retiring:
            for name, units in self.table.units.items():
                if any(u.retiring and u.state in AT_REST for u in units):
                    self.table.units[name] = [u for u in units if not (u.retiring and u.state in AT_REST)]
                    self.table.dirty = self.table.reconcile_due = True
            self.table.retiring = any(u.retiring for us in self.table.units.values() for u in us)
        pending = self.pending
        if pending is None:
            return
        now = self.clock()
        for name, deadline in list(pending.deadlines.items()):
            units = self.table.units.get(name, [])
            # a rollout in progress is judged when it is proven or has failed (rollout.py)
            if units and all(u.state is S.RUNNING and u.ready and u.predecessor is None for u in units):
                del pending.deadlines[name]
            elif any(u.state in (S.BACKOFF, S.FATAL) or (u.state is S.EXITED and
                     (u.last_exit or {}).get("code") != 0) for u in units) or now > deadline:
                why = "did not become ready within its start window" if now > deadline else \
                    f"failed to start ({', '.join(sorted({u.state.value for u in units}))})"
                rolling = [u for u in units if u.predecessor is not None]
                if rolling:   # the old incarnations still serve: stop the new ones, keep them
                    for unit in rolling:
                        self.lifecycle.rollouts.abort(unit, why)
                    continue
                del pending.deadlines[name]
                pending.rolled_back[name] = why
                self.log.error("reload: rolling back a changed service", service=name, reason=why)
                self.table.set_config(replace(self.table.config, services={
                    **self.table.config.services, name: pending.previous[name]}))
                self._respec(name, pending.previous[name], Reason.RELOAD)
        if not pending.deadlines:
            self.pending = None
            result = {**pending.diff.as_dict(),
                      "result": "rolled_back" if pending.rolled_back else "applied",
                      "rolled_back": pending.rolled_back}
            if pending.rolled_back:
                self.effects.metrics.reload("failure")
                self.table.publish({"type": "reload", "service": None, "result": "rolled_back",
                               "rolled_back": pending.rolled_back})
            self.effects.signal_systemd("READY=1")
            if pending.reply is not None and not pending.reply.done():
                pending.reply.set_result(result)

    def rollout_failed(self, name: str, text: str) -> None:
        """Rollouts' hook: a reload's rollout failed. The service goes back to its previous
        definition (the one its old incarnation runs), and the reload reports it rolled back."""
        pending = self.pending
        if pending is None or name not in pending.deadlines:
            return
        del pending.deadlines[name]
        pending.rolled_back[name] = text
        previous = pending.previous[name]
        self.log.error("reload: rolling back a changed service", service=name, reason=text)
        self.table.set_config(replace(self.table.config, services={**self.table.config.services,
                                                                   name: previous}))
        for unit in self.table.units[name]:
            if unit.retiring:
                continue
            unit.spec = previous
            if unit.predecessor is not None:    # another instance mid-rollout to the bad spec
                self.lifecycle.rollouts.abort(unit, "was rolled back with the reload")
            elif unit.pid is not None and unit.run_spec != previous and unit.state in (S.STARTING, S.RUNNING):
                self.lifecycle.restart(unit, Reason.RELOAD)   # an instance already on the new spec goes back
        self.effects.reset_service(name)
