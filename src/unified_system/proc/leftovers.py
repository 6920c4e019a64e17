"""Stopping what a previous supervisor left behind (found in state.json by
core/statefile.py): group TERM, an event-driven wait on pidfds, then group KILL. The OS
half of a restore, so it lives with the other OS calls, not in core/."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from unified_system.core.statefile import (
    FORMAT,
    STOPPED_BEFORE_START,
    read_state,
    write_atomic,
)


# Moved from core/statefile.py: reading /proc is the adapter's job, not the core's.
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


def create_time(pid: int) -> float | None:
    # /proc, computed as psutil computes it (leftovers() compares the two): a state save
    # must not import psutil into the resident supervisor (issue 20)
    from unified_system.proc.procfs import create_time as from_proc

    return from_proc(pid)


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
        # For the supervisor's own log: it opens after this (core/persistence.py, restore)
        write_atomic(state_dir / STOPPED_BEFORE_START, {"format": FORMAT, "stopped": found})
        return stopped
    finally:
        os.close(fd)  # the lock goes with it; the supervisor takes it for good


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


