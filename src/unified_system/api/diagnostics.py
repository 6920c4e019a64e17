"""Supervisor and host resources, each graded healthy / warning / error."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unified_system
from unified_system.api.exposition import python_info

if TYPE_CHECKING:
    import psutil

WARNING, ERROR = 80.0, 95.0
_ORDER = ("healthy", "warning", "error")


def grade(percent: float | None) -> str:
    if percent is None:
        return "healthy"
    return "error" if percent >= ERROR else "warning" if percent >= WARNING else "healthy"


def _check(percent: float | None, **fields: Any) -> dict[str, Any]:
    return {**fields, "percent": None if percent is None else round(percent, 1),
            "status": grade(percent)}


def _limit(which: int) -> int | None:
    soft, _hard = resource.getrlimit(which)
    return None if soft == resource.RLIM_INFINITY else soft


def _connections(proc: psutil.Process) -> dict[str, int]:
    import psutil

    getter = getattr(proc, "net_connections", None) or proc.connections
    try:
        return dict(Counter(c.status for c in getter(kind="inet")))
    except psutil.Error:
        return {}


def diagnostics(state_dir: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    import psutil  # on the first GET /api/diagnostics, not in every supervisor from its start

    proc = psutil.Process()
    with proc.oneshot():
        rss = proc.memory_info().rss
        threads = proc.num_threads()
        fds = proc.num_fds()
        created = proc.create_time()
        proc_cpu = proc.cpu_percent(None)
    vm = psutil.virtual_memory()
    cores = psutil.cpu_count() or 1
    load = os.getloadavg()
    nofile = _limit(resource.RLIMIT_NOFILE)
    nproc = _limit(resource.RLIMIT_NPROC)
    try:
        import shutil  # on a request only: shutil is 0.6 MB with the archive modules it imports

        disk = shutil.disk_usage(state_dir)
        disk_check = _check(100.0 * disk.used / disk.total if disk.total else None,
                            path=str(state_dir), total_bytes=disk.total, free_bytes=disk.free)
    except OSError as exc:
        disk_check = {"path": str(state_dir), "status": "error", "error": str(exc)}
    checks = {
        "memory": _check(vm.percent, total_bytes=vm.total, available_bytes=vm.available,
                         supervisor_rss_bytes=rss),
        "cpu": _check(psutil.cpu_percent(None), cores=cores, supervisor_percent=proc_cpu),
        "load": _check(100.0 * load[0] / cores, load_average=[round(x, 2) for x in load]),
        "threads": _check(100.0 * threads / nproc if nproc else None, count=threads, limit=nproc),
        "file_descriptors": _check(100.0 * fds / nofile if nofile else None, open=fds,
                                   limit=nofile),
        "disk": disk_check,
    }
    conns = _connections(proc)
    checks["connections"] = {"by_state": conns, "total": sum(conns.values()), "status": "healthy"}
    status = max((c["status"] for c in checks.values()), key=_ORDER.index)
    return {
        "status": status,
        "supervisor": {"pid": os.getpid(), "uptime_seconds": round(time.time() - created, 3),
                       "version": unified_system.__version__,
                       "python": python_info()[1], "host": socket.gethostname()},
        "checks": checks,
        **(extra or {}),
    }
