"""An exec probe attempt: run a command through the seam, bounded by the probe's timeout."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from unified_system.core.policy import ExitStatus
from unified_system.proc.seam import ProcessSeam, SpawnError


class ProbeFailed(Exception):
    pass


def exec_check(seam: ProcessSeam, argv: tuple[str, ...], cwd: Path, env: Mapping[str, str],
               timeout: float) -> str:
    done = threading.Event()
    result: list[ExitStatus] = []

    def on_exit(status: ExitStatus) -> None:
        result.append(status)
        done.set()

    try:
        spawned = seam.spawn(argv, cwd=cwd, env=env, on_exit=on_exit)
    except SpawnError as exc:
        raise ProbeFailed(str(exc)) from exc
    if not done.wait(timeout):
        seam.signal_group(spawned.pgid, 9)
        done.wait(5)
        raise ProbeFailed(f"exec {argv[0]}: timed out after {timeout:g}s")
    status = result[0]
    if not status.ok:
        raise ProbeFailed(f"exec {argv[0]}: {status.describe()}")
    return "exit code 0"
