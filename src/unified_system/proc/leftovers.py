"""Stopping what a previous supervisor left behind (found in state.json by
core/statefile.py): group TERM, an event-driven wait on pidfds, then group KILL. The OS
half of a restore, so it lives with the other OS calls, not in core/."""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Iterable
from typing import Any


def stop_leftovers(found: Iterable[dict[str, Any]], timeout: float, log: Any) -> int:
    """Group TERM, wait up to `timeout`, then group KILL. Runs before anything starts."""
    found = list(found)
    for item in found:
        log.warning("stopping a process left by a previous supervisor", service=item["service"],
                    pid=item["pid"], pgid=item.get("pgid"))
        _signal_group(item, signal.SIGTERM)
    alive = wait_exit([item["pid"] for item in found], timeout)
    for item in found:
        _signal_group(item, signal.SIGKILL)
    wait_exit(alive, 2.0)
    return len(found)


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
