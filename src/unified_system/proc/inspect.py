"""What a process is doing, read from /proc: the evidence recorded before a freeze kill."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unified_system.proc.procfs import cpu_rss, tree_pids
from unified_system.proc.which import which

if TYPE_CHECKING:
    import psutil

_STATES = {"R": "running", "S": "sleeping", "D": "disk sleep", "T": "stopped",
           "t": "tracing stop", "Z": "zombie", "X": "dead", "I": "idle"}


def _read(path: str, limit: int = 16384) -> str | None:
    try:
        return Path(path).read_text(errors="replace")[:limit]
    except OSError:
        return None


def proc_state(pid: int) -> str | None:
    """The one-letter kernel state (R, S, D, T, Z...), or None when gone."""
    stat = _read(f"/proc/{pid}/stat", 4096)
    if not stat:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def cpu_seconds(pid: int) -> float | None:
    figures = cpu_rss(pid)
    return None if figures is None else figures[0]


def tree(pid: int) -> list[psutil.Process]:
    import psutil  # crash dumps only: the sampler's tree_rss reads /proc itself

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss(pid: int) -> int | None:
    """RSS of a process and all its descendants (None when it is gone)."""
    root = cpu_rss(pid)
    if root is None:
        return None
    total = root[1]
    for child in tree_pids(pid)[1:]:
        figures = cpu_rss(child)
        total += figures[1] if figures else 0
    return total


def resources(pid: int) -> dict[str, Any]:
    import psutil  # a crash dump's figures: rare, and psutil answers them all at once

    rss = tree_rss(pid)
    try:
        main = psutil.Process(pid)
        with main.oneshot():
            return {"rss_bytes": rss, "cpu_percent": main.cpu_percent(interval=None),
                    "threads": main.num_threads(), "status": main.status(),
                    "processes": len(tree(pid))}
    except psutil.Error:
        return {"rss_bytes": rss, "cpu_percent": None, "threads": None, "status": None}


def inspect_frozen(pid: int, cpu_at_silence: float | None,
                   run: Callable[..., subprocess.CompletedProcess[bytes]]) -> dict[str, Any]:
    """State, wait channel, kernel stacks, per-thread states, CPU movement, py-spy if present
    (started through `run`, ProcessSeam.run, so an orphan sweep never reaps it)."""
    state = proc_state(pid)
    cpu_now = cpu_seconds(pid)
    moved = None if cpu_now is None or cpu_at_silence is None else round(cpu_now - cpu_at_silence, 4)
    threads = []
    try:
        for tid in sorted(int(t.name) for t in Path(f"/proc/{pid}/task").iterdir() if t.name.isdigit())[:64]:
            threads.append({"tid": tid, "state": _STATES.get(proc_state(tid) or "", None),
                            "wchan": _read(f"/proc/{pid}/task/{tid}/wchan", 256)})
    except (OSError, ValueError):
        pass
    report: dict[str, Any] = {
        "state": _STATES.get(state or "", state),
        "wchan": _read(f"/proc/{pid}/wchan", 256),
        "stack": _read(f"/proc/{pid}/stack"),           # root only; None otherwise
        "cpu_seconds_during_silence": moved,
        "verdict": _verdict(state, moved),
        "threads": threads,
        "resources": resources(pid),
    }
    spy = which("py-spy")
    if spy and state != "T":
        try:
            out = run([spy, "dump", "--pid", str(pid)], timeout=3)
            report["py_spy"] = (out.stdout or out.stderr).decode(errors="replace")[-16384:]
        except (OSError, subprocess.SubprocessError) as exc:
            report["py_spy"] = f"py-spy failed: {exc}"
    return report


def _verdict(state: str | None, moved: float | None) -> str:
    if state == "T":
        return "stopped (SIGSTOP or a debugger): it cannot run"
    if state == "D":
        return "in uninterruptible disk sleep: stuck in the kernel, probably on I/O"
    if moved is not None and moved > 0.05:
        return "busy: CPU time kept moving without heartbeats (a busy loop)"
    if moved is not None:
        return "idle: no CPU time used during the silence (a deadlock or a blocking wait)"
    return "unknown"
