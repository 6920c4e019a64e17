"""Build steps (SPEC §2 `build`): run in the service's cwd before its first start, only when
an input changed since the last successful build. The input hash lives in state_dir/builds."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from unified_system.core.events import BuildDone
from unified_system.core.owner import Owner
from unified_system.core.states import State
from unified_system.proc.logfile import tail
from unified_system.proc.seam import SpawnError

if TYPE_CHECKING:
    from unified_system.config.schema import Service

S = State


def inputs_digest(spec: Service) -> str:
    """Hash of the build command and every input file (globs, relative to cwd)."""
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


class BuildMixin(Owner):
    def _start_build(self, name: str) -> None:
        if self._builds.get(name) == "running":
            return
        self._builds[name] = "running"
        spec = self.config.services[name]
        for unit in self.units[name]:
            if unit.state is S.PENDING:
                self._transition(unit, S.BUILDING, None)
        record = self.runtime.state_dir / "builds" / f"{name}.json"

        def job() -> None:  # on the worker: hashing reads files, and the owner never blocks
            try:
                digest = inputs_digest(spec)
                if spec.build.inputs and record.exists() and \
                        json.loads(record.read_text()).get("digest") == digest:
                    self.post(BuildDone(name, True, "inputs unchanged: build skipped", digest, True))
                    return
            except (OSError, ValueError) as exc:
                digest = f"error: {exc}"
            self.post(BuildDone(name, None, "", digest, False))

        self.runtime.worker.submit(job)

    def _on_build_done(self, ev: BuildDone) -> None:
        if self._builds.get(ev.service) != "running":
            return
        spec = self.config.services[ev.service]
        output = self.runtime.outputs[ev.service]
        if ev.ok is None:  # the inputs changed: run the command now
            output.write_line(f"[unified-system] build: {' '.join(spec.build.command)}")
            self.log.info("build started", service=ev.service, command=list(spec.build.command))
            try:
                spawned = self.runtime.spawn_build(ev.service, ev.digest)
            except SpawnError as exc:
                self._build_failed(ev.service, str(exc))
                return
            self._build_pgid[ev.service] = spawned.pgid
            self._timers.call_at(self.clock() + spec.build.timeout,
                                 lambda: self._build_timeout(ev.service, spawned.pgid))
            return
        self._build_pgid.pop(ev.service, None)
        if not ev.ok:
            self._build_failed(ev.service, ev.detail)
            return
        if not ev.skipped:
            record = self.runtime.state_dir / "builds" / f"{ev.service}.json"
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"digest": ev.digest}))
        self._builds[ev.service] = "done"
        self.log.info("build finished", service=ev.service, detail=ev.detail)
        for unit in self.units[ev.service]:
            if unit.state is S.BUILDING:
                self._transition(unit, S.PENDING, "built")

    def _build_failed(self, name: str, detail: str) -> None:
        self._builds[name] = "failed"
        last = tail(self.runtime.log_dir / f"{name}.log", 20)
        self.log.error("build failed", service=name, detail=detail, last_lines=last)
        for unit in self.units[name]:
            if unit.state is S.BUILDING:
                self._transition(unit, S.FATAL, "build", note=f"build failed: {detail}; "
                                 f"last lines: {' | '.join(last[-5:])}")

    def _build_timeout(self, name: str, pgid: int) -> None:
        if self._build_pgid.get(name) == pgid:
            self.log.error("build timed out", service=name)
            self._builds_timed_out.add(name)
            self.runtime.seam.signal_group(pgid, signal.SIGKILL)

    def _cancel_build(self, name: str) -> None:
        pgid = self._build_pgid.get(name)
        if pgid is not None:
            self.runtime.seam.signal_group(pgid, signal.SIGKILL)
        self._builds[name] = "cancelled"
