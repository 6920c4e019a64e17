"""Reloads, as an owner mixin: file changes restart a service (reason `watch`); a config
reload is parsed off the owner, diffed, applied, and rolled back per service when a changed
service does not come up within its start window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unified_system import graph
from unified_system.config.view import replace
from unified_system.core.events import Command, ConfigLoaded, FileChanged, Refused
from unified_system.core.owner import Owner
from unified_system.core.reasons import Reason
from unified_system.core.reload_diff import PendingReload, diff_services, start_window
from unified_system.core.states import AT_REST, State
from unified_system.core.unit import Unit

if TYPE_CHECKING:
    from unified_system.config import LoadedConfig

S = State
CONFIG_KEY = "\0config"   # not a valid service name, so it cannot collide
CONFIG_DEBOUNCE = 0.5
RELOAD_PARSE_TIMEOUT = 60.0  # YAML, .env, validation and PATH lookups, in a helper process


class ReloadInProgress(Refused):
    pass


class ReloadMixin(Owner):
    # ------------------------------------------------------------------ file changes
    def _on_file_changed(self, ev: FileChanged) -> None:
        if ev.key == CONFIG_KEY:
            debounce = CONFIG_DEBOUNCE
        else:  # a change queued before a reload removed the service, or its `watch`
            spec = self.config.services.get(ev.key)
            if ev.key not in self.units or spec is None or spec.watch is None:
                return
            debounce = spec.watch.debounce
        timer = self._debounce.pop(ev.key, None)
        if timer is not None:
            timer.cancel()
        self._debounce[ev.key] = self._timers.call_at(
            self.clock() + debounce, lambda: self._changed(ev.key, ev.path))

    def _changed(self, key: str, path: str) -> None:
        self._debounce.pop(key, None)
        if key == CONFIG_KEY:
            if self._shutting_down:
                return
            self.log.info("config file changed: reloading", path=path)
            try:
                self._cmd_reload(Command("reload"))
            except ReloadInProgress:  # it may have read the file before this change: try again
                self._debounce[key] = self._timers.call_at(
                    self.clock() + CONFIG_DEBOUNCE, lambda: self._changed(key, path))
            return
        self.log.info("watched file changed: restarting", service=key, path=path)
        for unit in self.units.get(key, ()):
            if unit.state in (S.STARTING, S.RUNNING):
                self._restart(unit, Reason.WATCH)

    def _watch_services(self, names: Any) -> None:
        if self.runtime.watcher is None:
            if any(s.watch is not None and s.enabled for s in self.config.services.values()):
                self.runtime.open_watcher()   # the first watch, added by a reload: it watches all
                self._watch_services(list(self.config.services))
            return
        for name in names:
            self.runtime.watcher.unwatch(name)
            spec = self.config.services.get(name)
            if spec is not None and spec.watch is not None and spec.enabled:
                self.runtime.watcher.watch(name, spec.watch.paths, spec.watch.ignore)

    # ------------------------------------------------------------------ config reload
    def _cmd_reload(self, cmd: Command) -> object:
        if self._reload is not None or self._reload_parsing:
            raise ReloadInProgress("a reload is already in progress")
        self._reload_parsing = True
        self.runtime.signal_systemd("RELOADING=1")
        path, env_name = self.loaded.path, self.loaded.env_name
        # The helper finds busy the ports this supervisor holds; a service keeps its own
        held = self.runtime.held_ports()

        def parse() -> None:  # on the worker, in a helper process (config/apart.py)
            from unified_system.config.apart import HELPER_CWD, helper_argv, helper_env, read_answer
            from unified_system.config.checks import not_held
            from unified_system.config.errors import ConfigErrors
            try:
                done = self.runtime.run_helper(helper_argv(path, env_name), env=helper_env(),
                                             cwd=HELPER_CWD, timeout=RELOAD_PARSE_TIMEOUT)
                loaded, busy = read_answer(done.returncode, done.stdout, done.stderr)
                busy = not_held(busy, loaded.config, held)
                if busy:
                    raise ConfigErrors(busy)
                self.post(ConfigLoaded(loaded, None, cmd.reply))
            except Exception as exc:  # ConfigErrors, or a file that vanished mid-edit
                self.post(ConfigLoaded(None, exc, cmd.reply))

        self.runtime.submit(parse)
        return DEFERRED

    def _on_config_loaded(self, ev: ConfigLoaded) -> None:
        self._reload_parsing = False
        if self._shutting_down:  # a reload would bring services back up
            if ev.reply is not None:
                ev.reply.set_exception(Refused("shutting down: the reload was not applied"))
            return
        if ev.errors is not None:
            self.runtime.metrics.reload("failure")
            self.log.error("reload refused: the new config is invalid; nothing changed",
                           errors=[str(e) for e in getattr(ev.errors, "errors", [ev.errors])])
            self._publish({"type": "reload", "service": None, "result": "invalid"})
            self.runtime.signal_systemd("READY=1")
            if ev.reply is not None:
                ev.reply.set_exception(ev.errors)
            return
        self._apply(ev.loaded, ev.reply)

    def _apply(self, loaded: LoadedConfig, reply: Any) -> None:
        old = dict(self.config.services)
        diff = diff_services(old, loaded.config.services)
        self.loaded, self.config = loaded, loaded.config
        now = self.clock()
        for name in diff.removed:
            for unit in self.units[name]:
                unit.desired_up, unit.then_start = False, False
                unit.stop_reason = unit.stop_reason or Reason.RELOAD
            self._removing.add(name)
        # Removed by an earlier reload and still stopping: its units stay, and take the new spec
        revived = [name for name in diff.added if name in self._removing]
        self._removing.difference_update(revived)
        self._rebuild_graph()  # after _removing is known: removed services stay reconciled
        for name in diff.added:
            spec = self.config.services[name]
            if name in revived:
                self._respec(name, spec, Reason.RELOAD)
                continue
            self.units[name] = [Unit(name, i, spec, desired_up=spec.enabled,
                                     state=S.PENDING if spec.enabled else S.DISABLED)
                                for i in range(spec.instances)]
            self.runtime.add_service(name)
            self.runtime.metrics.define(name)
        for name in diff.changed:
            self._respec(name, self.config.services[name], Reason.RELOAD)
        self._watch_services([*diff.added, *diff.changed, *diff.removed])
        self.runtime.hide_secrets()   # before the new services' first line reaches the console
        self.log.info("config reloaded", **diff.as_dict())
        self._publish({"type": "reload", "service": None, "result": "applied", **diff.as_dict()})
        self.runtime.metrics.reload("success")
        self._reload = PendingReload(diff, {n: old[n] for n in diff.changed},
                                     {n: now + start_window(self.config.services[n])
                                      for n in diff.changed if self.config.services[n].enabled},
                                     reply)
        self._dirty = True

    def _respec(self, name: str, spec: Any, reason: Reason) -> None:
        """Give a service a new definition: running units restart with it (rolling when it
        holds sockets or has several instances), the others just take it."""
        units = self.units[name]
        # By index, not by place: a rolling restart lists two units for one instance.
        live = [u for u in units if not u.retiring]
        for unit in live:
            if unit.index >= spec.instances:        # fewer instances: the extras go
                unit.desired_up, unit.stop_reason = False, reason
                unit.retiring = self._retiring = True
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
                    self._stop(unit, reason)
                continue
            if unit.state in (S.STARTING, S.RUNNING):
                self._restart(unit, reason)
            elif unit.state in (S.FATAL, S.EXITED, S.STOPPED, S.DISABLED):
                unit.fresh_start()
                self._transition(unit, S.PENDING, reason)
        self.runtime.reset_service(name)

    def _rebuild_graph(self) -> None:
        self._deps = {n: tuple(s.depends_on) for n, s in self.config.services.items()}
        self._dependents = graph.dependents(self._deps)
        self._order = [*sorted(self._removing),
                       *graph.spawn_order(self._deps)]

    # ------------------------------------------------------------------ reload outcome
    def _check_reload(self) -> None:
        """Called each loop turn: remove what is gone, and judge changed services."""
        for name in [n for n in self._removing
                     if all(u.state in AT_REST and u.lingering_pgid is None for u in self.units[n])]:
            self._removing.discard(name)
            del self.units[name]
            self.runtime.remove_service(name)  # its log fd, sockets, series and histories
            if self.runtime.watcher is not None:
                self.runtime.watcher.unwatch(name)
            timer = self._debounce.pop(name, None)
            if timer is not None:
                timer.cancel()
            self.builds.forget(name)
            self._rebuild_graph()
            self._dirty = self._reconcile_due = True
        if self._retiring:
            for name, units in self.units.items():
                if any(u.retiring and u.state in AT_REST for u in units):
                    self.units[name] = [u for u in units if not (u.retiring and u.state in AT_REST)]
                    self._dirty = self._reconcile_due = True
            self._retiring = any(u.retiring for us in self.units.values() for u in us)
        pending = self._reload
        if pending is None:
            return
        now = self.clock()
        for name, deadline in list(pending.deadlines.items()):
            units = self.units.get(name, [])
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
                        self._abort_rollout(unit, why)
                    continue
                del pending.deadlines[name]
                pending.rolled_back[name] = why
                self.log.error("reload: rolling back a changed service", service=name, reason=why)
                self.config = replace(self.config, services={**self.config.services,
                                                             name: pending.previous[name]})
                self._respec(name, pending.previous[name], Reason.RELOAD)
        if not pending.deadlines:
            self._reload = None
            result = {**pending.diff.as_dict(),
                      "result": "rolled_back" if pending.rolled_back else "applied",
                      "rolled_back": pending.rolled_back}
            if pending.rolled_back:
                self.runtime.metrics.reload("failure")
                self._publish({"type": "reload", "service": None, "result": "rolled_back",
                               "rolled_back": pending.rolled_back})
            self.runtime.signal_systemd("READY=1")
            if pending.reply is not None and not pending.reply.done():
                pending.reply.set_result(result)


DEFERRED = object()  # a command handler's answer: the reply will be set later
