"""state.json (SPEC §8): the supervisor's own checkpoint.

It keeps what must survive a restart of the supervisor: restart counts, crash history,
circuit states, and for each live incarnation its pid, create time and process group, so a
supervisor that was SIGKILLed can find and stop what it left behind before starting again.
Written atomically (temp file, fsync, rename, fsync dir) and coalesced by the owner.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

FORMAT = 1


_write_lock = threading.Lock()  # the worker's coalesced saves and the final save at exit


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    with _write_lock:
        # mkstemp's file, without tempfile (and the shutil it imports, ~0.9 MB resident):
        # the lock serialises this process's writers, the pid names it apart from others'.
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=1, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_state(path: Path, log: Any) -> dict[str, Any]:
    """The saved state, or {} when absent; a corrupt file is moved aside, never fatal."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("state.json unreadable: starting fresh", error=str(exc))
        return {}
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a state file of this format")
        if not isinstance(data.get("services", {}), dict):
            raise ValueError("services is not a map")
        return data
    except ValueError as exc:
        aside = path.with_name(f"state.json.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, aside)
        log.warning("state.json is corrupt: moved aside, starting fresh", error=str(exc),
                    moved_to=str(aside))
        return {}


STOPPED_BEFORE_START = "leftovers-stopped.json"


def take_stopped_before_start(state_dir: Path) -> list[dict[str, Any]]:
    """What `run` stopped before the supervisor started (then forgotten)."""
    path = state_dir / STOPPED_BEFORE_START
    try:
        data = json.loads(path.read_text())
        path.unlink()
    except (OSError, ValueError):
        return []
    stopped = data.get("stopped") if isinstance(data, dict) else None
    return [item for item in stopped or () if isinstance(item, dict)]
