"""The few process and host figures the idle supervisor reads every few seconds, straight
from /proc: a process's CPU seconds and RSS, the host's CPU, memory and disk use. psutil
answers the same (its Linux backend reads these files), but it and a Process object per
child were ~1 MB resident in a supervisor that only ever asks these questions; it is still
imported where a rarer question needs it (crash dumps, diagnostics, a busy port's holder).
"""

from __future__ import annotations

import os

from unified_system.proc.treestat import tree_pids as tree_pids  # the one walk, shared

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_rss(pid: int) -> tuple[float, int] | None:
    """(user + system CPU seconds, RSS bytes) of one process; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def boot_time() -> float:
    with open("/proc/stat", "rb") as fh:
        for line in fh:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def create_time(pid: int) -> float | None:
    """When the process started, in seconds since the epoch: boot time plus its start in
    clock ticks, exactly as psutil's Process.create_time() computes it on Linux (so that a
    value saved by one compares equal with a value read by the other)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return boot_time() + float(fields[19]) / TICKS
    except (OSError, IndexError, ValueError):
        return None


def zombie(pid: int) -> bool:
    """Exited but not yet reaped (or being torn down): psutil's STATUS_ZOMBIE / DEAD."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return False


class HostMeter:
    """The host's CPU, memory and disk use in percent, as psutil's cpu_percent(None),
    virtual_memory().percent and disk_usage().percent give them."""

    def __init__(self) -> None:
        self._cpu: tuple[int, int] | None = None   # (busy, total) jiffies at the last call

    def cpu(self) -> float:
        with open("/proc/stat", "rb") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        # guest time is already counted in user and nice
        total = sum(values[:8])
        busy = total - values[3] - (values[4] if len(values) > 4 else 0)   # idle, iowait
        last, self._cpu = self._cpu, (busy, total)
        if last is None or total <= last[1]:
            return 0.0
        return round(100.0 * (busy - last[0]) / (total - last[1]), 1)

    @staticmethod
    def memory() -> float:
        info: dict[bytes, int] = {}
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                key, _, rest = line.partition(b":")
                info[key] = int(rest.split()[0])
        total = info.get(b"MemTotal", 0)
        available = info.get(b"MemAvailable", info.get(b"MemFree", 0))
        return round(100.0 * (total - available) / total, 1) if total else 0.0

    @staticmethod
    def disk(path: str) -> float:
        st = os.statvfs(path)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        free = st.f_bavail * st.f_frsize
        return round(100.0 * used / (used + free), 1) if used + free else 0.0
