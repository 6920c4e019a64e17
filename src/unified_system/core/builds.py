"""Build steps (SPEC §2 `build`): run in the service's cwd before its first start, only when
an input changed since the last successful build. The input hash lives in state_dir/builds.

`Builds` is a collaborator of the owner: it holds each service's build status
and the builds in progress, is given the units table, the timers, `Effects` and the clock,
and changes a unit's state only through the table's `transition()`.
"""

from __future__ import annotations

import json
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unified_system.core import policy
from unified_system.core.events import BuildDone
from unified_system.core.ports import Effects, SpawnError
from unified_system.core.states import State
from unified_system.core.table import Services
from unified_system.core.timers import Timer, TimerHeap

if TYPE_CHECKING:
    from unified_system.config.schema import Service
    from unified_system.config.view import ConfigRecord

S = State


@dataclass
class BuildRun:
    """The build of one service in progress; owner state."""

    number: int
    pgid: int | None = None
    timer: Timer | None = None
    timed_out: bool = False
    started: float = 0.0      # monotonic, for the console's progress line
    scarce_tries: int = 0     # spawns that found descriptors, processes or memory scarce

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def inputs_digest(spec: Service) -> str:
    """Hash of the build command and every input file (globs, relative to cwd)."""
    import hashlib  # here: only services with a build map OpenSSL (issue 20)

    build = spec.build
    if build is None:
        raise ValueError("the service has no build")
    digest = hashlib.sha256(json.dumps(list(build.command)).encode())
    for pattern in build.inputs:
        for path in sorted(Path(spec.cwd).glob(pattern)):
            if path.is_file():
                digest.update(str(path.relative_to(spec.cwd)).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _short(command: tuple[str, ...] | list[str], most: int = 60) -> str:
    # Absolute paths shortened to their names: `python builder.py 40`, not the venv's path.
    text = " ".join(arg.rsplit("/", 1)[-1] if arg.startswith("/") else arg for arg in command)
    return text if len(text) <= most else text[:most - 1] + "…"


@dataclass(frozen=True)
class BuildHooks:
    """What builds may ask of the owner's other concerns."""
    post: Callable[[object], None]                  # the owner's door (from the worker)
    kill_leftovers: Callable[[int], None]           # lifecycle: what a build left running


class Builds:
    def __init__(self, table: Services, timers: TimerHeap, effects: Effects,
                 clock: Callable[[], float], log: Any, hooks: BuildHooks) -> None:
        self.table, self.timers, self.effects, self.clock = table, timers, effects, clock
        self.log, self.hooks = log, hooks
        self._builds: dict[str, str] = {}           # service -> running | done | failed | cancelled
        self._build_runs: dict[str, BuildRun] = {}  # the builds in progress

    @property
    def config(self) -> ConfigRecord:
        return self.table.config

    def done(self, name: str) -> bool:
        return self._builds.get(name) == "done"

    def retry(self, name: str) -> None:
        """An operator's start after a failed or cancelled build tries the build again."""
        if self._builds.get(name) in ("failed", "cancelled"):
            self._builds.pop(name)

    def forget(self, name: str) -> None:
        """A reload removed the service."""
        self._builds.pop(name, None)
        self._build_runs.pop(name, None)

    def start(self, name: str) -> None:
        if self._builds.get(name) == "running":
            return
        self._builds[name] = "running"
        run = next(self.table.numbers)
        self._build_runs[name] = BuildRun(run, started=self.clock())
        spec = self.config.services[name]
        for unit in self.table.units[name]:
            if unit.state is S.PENDING:
                self.table.transition(unit, S.BUILDING, None)
        record = self.effects.state_dir / "builds" / f"{name}.json"
        post = self.hooks.post

        def job() -> None:  # on the worker: hashing reads files, and the owner never blocks
            try:
                digest = inputs_digest(spec)
                if spec.build.inputs and record.exists() and \
                        json.loads(record.read_text()).get("digest") == digest:
                    post(BuildDone(name, True, "inputs unchanged: build skipped", digest, True, run))
                    return
            except (OSError, ValueError) as exc:
                digest = f"error: {exc}"
            post(BuildDone(name, None, "", digest, False, run))

        self.effects.submit(job)

    def on_done(self, ev: BuildDone) -> None:
        current = self._build_runs.get(ev.service)
        if self._builds.get(ev.service) != "running" or current is None or current.number != ev.run:
            return
        spec = self.config.services[ev.service]
        if ev.ok is None:  # the inputs changed: run the command now
            self.effects.service_line(ev.service, f"[unified-system] build: {' '.join(spec.build.command)}")
            self.log.info("build started", service=ev.service, command=list(spec.build.command))
            try:
                spawned = self.effects.spawn_build(ev.service, ev.digest, ev.run)
            except (SpawnError, OSError) as exc:
                if policy.scarce(exc):   # the build is not at fault: the same run tries again
                    self._spawn_later(ev, current, exc)
                    return
                del self._build_runs[ev.service]
                self._build_failed(ev.service, str(exc), current)
                return
            current.pgid = spawned.pgid
            current.timer = self.timers.call_at(self.clock() + spec.build.timeout,
                                                 lambda: self._build_timeout(ev.service, ev.run))
            return
        del self._build_runs[ev.service]
        current.cancel_timer()
        if current.pgid is not None and self.effects.signal_group(current.pgid, 0):
            self.hooks.kill_leftovers(current.pgid)  # a build leaves nothing running behind it
        if current.timed_out:
            self._build_failed(ev.service, f"timed out after {spec.build.timeout:g}s", current)
            return
        if not ev.ok:
            self._build_failed(ev.service, ev.detail, current)
            return
        if not ev.skipped:
            record = self.effects.state_dir / "builds" / f"{ev.service}.json"
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"digest": ev.digest}))
        self._builds[ev.service] = "done"
        self.log.info("build finished", service=ev.service, detail=ev.detail)
        self.effects.console_line(ev.service, f"building {ev.service}: " + (
            "inputs unchanged, skipped" if ev.skipped else
            f"{_short(spec.build.command)} … {self.clock() - current.started:.1f} s"))
        for unit in self.table.units[ev.service]:
            if unit.state is S.BUILDING:
                self.table.transition(unit, S.PENDING, "built")

    def _spawn_later(self, ev: BuildDone, run: BuildRun, exc: BaseException) -> None:
        """EMFILE, ENFILE, EAGAIN or ENOMEM (a flood took them): no failure; the spawn is
        tried again on the short backoff a service's spawn gets (policy.SCARCE_BACKOFF)."""
        run.scarce_tries += 1
        first, longest = policy.SCARCE_BACKOFF
        delay = policy.next_delay(run.scarce_tries, first, longest, 2.0, 0.1, random.random())
        self.log.warning("build: resources scarce; retrying", service=ev.service, error=str(exc),
                         delay=round(delay, 3))
        run.timer = self.timers.call_at(self.clock() + delay, lambda: self.on_done(ev))

    def _build_failed(self, name: str, detail: str, run: BuildRun | None = None) -> None:
        self._builds[name] = "failed"
        last = self.effects.log_tail(name, 20)
        self.log.error("build failed", service=name, detail=detail, last_lines=last)
        took = f" after {self.clock() - run.started:.1f} s" if run is not None else ""
        self.effects.console_line(name, f"building {name}: {_short(self.config.services[name].build.command)}"
                            f" … failed{took} ({detail}); its last lines:")
        self.effects.console_last_lines(name, last)
        for unit in self.table.units[name]:
            if unit.state is S.BUILDING:
                self.table.transition(unit, S.FATAL, "build", note=f"build failed: {detail}; "
                                 f"last lines: {' | '.join(last[-5:])}")

    def _build_timeout(self, name: str, run: int) -> None:
        current = self._build_runs.get(name)
        if current is not None and current.number == run and current.pgid is not None:
            self.log.error("build timed out", service=name)
            current.timed_out, current.timer = True, None
            self.effects.signal_group(current.pgid, signal.SIGKILL)

    def cancel(self, name: str) -> None:
        current = self._build_runs.pop(name, None)
        if current is not None:
            current.cancel_timer()
            if current.pgid is not None:
                self.effects.signal_group(current.pgid, signal.SIGKILL)
        self._builds[name] = "cancelled"
