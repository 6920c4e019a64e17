"""state.json (SPEC §8): the supervisor's own checkpoint.

It keeps what must survive a restart of the supervisor: restart counts, crash history,
circuit states, and for each live incarnation its pid, create time and process group, so a
supervisor that was SIGKILLed can find and stop what it left behind before starting again.
Written atomically (temp file, fsync, rename, fsync dir) and coalesced by the owner.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMAT = 1


_write_lock = threading.Lock()  # the worker's coalesced saves and the final save at exit


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    with _write_lock:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def leftovers(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Incarnations recorded in state.json that still run: same pid AND same create time."""
    # /proc, not psutil: this runs in the resident supervisor (issue 20)
    from unified_system.proc.procfs import create_time as started_at
    from unified_system.proc.procfs import zombie

    found = []
    for name, svc in state.get("services", {}).items():
        for inst in svc.get("instances", []):
            pid, created = inst.get("pid"), inst.get("create_time")
            if not pid or created is None or pid == os.getpid():
                continue
            now = started_at(pid)
            if now is not None and not zombie(pid) and abs(now - created) < 0.01:
                found.append({"service": name, **inst})
    return found


def stop_leftovers(found: Iterable[dict[str, Any]], timeout: float, log: Any) -> int:
    """Group TERM, wait up to `timeout`, then group KILL, and wait until every group is
    empty (a grandchild may hold a listen port the new start needs). Runs before anything
    starts."""
    found = list(found)
    for item in found:
        log.warning("stopping a process left by a previous supervisor", service=item["service"],
                    pid=item["pid"], pgid=item.get("pgid"))
        _signal_group(item, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    wait_exit([item["pid"] for item in found], timeout)
    groups = wait_groups_empty([item.get("pgid") or item["pid"] for item in found],
                               deadline - time.monotonic())
    for item in found:
        if (item.get("pgid") or item["pid"]) in groups:
            _signal_group(item, signal.SIGKILL)
    left = wait_groups_empty(groups, KILLED_GONE)
    if left:
        log.error("processes left by a previous supervisor survive SIGKILL", pgids=left)
    return len(found)


KILLED_GONE = 5.0      # seconds for SIGKILLed groups to empty (init reaps the members)
GROUP_POLL = 0.05      # seconds between checks: a group's end is no event we can wait on


def wait_groups_empty(pgids: Iterable[int], timeout: float) -> list[int]:
    """Wait until no process is left in these groups (they are not our children: a bounded
    poll of kill(-pgid, 0)). Returns the groups still holding a process."""
    left = list(pgids)
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        left = [pgid for pgid in left if _group_exists(pgid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(GROUP_POLL)


def _group_exists(pgid: int) -> bool:
    from unified_system.proc.guard import group_has_live_member

    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return group_has_live_member(pgid)  # zombies do not hold ports


def stop_left_before_start(state_dir: Path, stop_timeouts: dict[str, float], log: Any) -> int:
    """At `run`, before its listen ports are checked: stop what a SIGKILLed predecessor left
    running (its own leftover holding a port is not "another program"). Only when no
    supervisor holds the state dir's lock: a live one's services are not leftovers."""
    pidfile = state_dir / "supervisor.pid"
    try:
        fd = os.open(pidfile, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0   # a supervisor runs: `run` will say so
        found = leftovers(read_state(state_dir / "state.json", log))
        if not found:
            return 0
        timeout = max((stop_timeouts.get(f["service"], 10.0) for f in found), default=10.0)
        stopped = stop_leftovers(found, min(timeout, 60.0), log)
        # For the supervisor's own log: it opens after this (persistence.py, _restore)
        write_atomic(state_dir / STOPPED_BEFORE_START, {"format": FORMAT, "stopped": found})
        return stopped
    finally:
        os.close(fd)  # the lock goes with it; the supervisor takes it for good


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


def wait_exit(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait for processes that are not our children: a pidfd turns readable when its process
    ends, for any process, so this is event-driven. Returns the pids still running."""
    fds: dict[int, int] = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    try:
        while fds and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(fds), [], [], left)
            for fd in ready:
                os.close(fd)
                del fds[fd]
        return list(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


def _signal_group(item: dict[str, Any], sig: int) -> None:
    try:
        os.killpg(item.get("pgid") or item["pid"], sig)
    except (ProcessLookupError, PermissionError):
        pass


def create_time(pid: int) -> float | None:
    # /proc, computed as psutil computes it (leftovers() compares the two): a state save
    # must not import psutil into the resident supervisor (issue 20)
    from unified_system.proc.procfs import create_time as from_proc

    return from_proc(pid)
