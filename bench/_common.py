"""Shared benchmark plumbing: run a real supervisor on a generated config and watch /proc."""

from __future__ import annotations

import compileall
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This machine sets PYTHONDONTWRITEBYTECODE=1, so a checkout would compile every module of the
# package again on each start (~60 ms). An installed package, or any Python that may write
# .pyc files, has them: the benchmarks measure that case.
compileall.compile_dir(str(ROOT / "src"), quiet=1)
START = ROOT / "start_system.py"
SLEEP = shutil.which("sleep") or "/bin/sleep"


def add_clean_python(parser) -> None:
    """--clean-python: run the benchmark (and so the supervisor, the floors and Python
    children, all started with sys.executable) under bench/_cleanpy.py's interpreter, which
    does not run this VM's sandbox .pth (certifi, zipfile, tempfile in every process)."""
    parser.add_argument("--clean-python", action="store_true",
                        help="run under a venv interpreter without this VM's sandbox .pth hook")


def reexec_clean(args) -> None:
    """With --clean-python, run this script again under that interpreter (once: the
    interpreter it runs under is a venv, which _cleanpy's never is made from)."""
    if args.clean_python and sys.prefix == sys.base_prefix:
        from _cleanpy import clean_python

        python = clean_python()
        os.execv(python, [python, *sys.argv])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LEADERS: set[int] = set()   # pids seen leading their own session: services


def _is_service(pid: int) -> bool:
    """A service leads its own session; the supervisor's guard and its short-lived config
    child stay in the supervisor's. (Not cached when false: a just-forked service may not
    have called setsid yet.)"""
    if pid in _LEADERS:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            session = int(fh.read().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return False
    if session == pid:
        _LEADERS.add(pid)
    return session == pid


def children(pid: int) -> list[int]:
    """The services among pid's direct children. The supervisor's owner (its main thread)
    spawns every service, and the kernel lists a child under the thread that forked it: one
    small read per poll, not one per thread (that cost 0.4 ms, a quarter of a core at 1 kHz)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [p for p in map(int, fh.read().split()) if _is_service(p)]
    except FileNotFoundError:
        return []


def guard_pids(pid: int) -> list[int]:
    """The supervisor's guard process (proc/lifeline.py), if it runs one."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(p) for p in fh.read().split()]
    except FileNotFoundError:
        return []
    out = []
    for kid in kids:
        try:
            with open(f"/proc/{kid}/cmdline", "rb") as fh:
                if any(arg.endswith((b"proc/guard.py", b"proc/guard.sh")) for arg in fh.read().split(b"\0")):
                    out.append(kid)
        except OSError:
            pass
    return out


def _kb_field(path: str, key: str) -> int:
    """A `Key:  N kB` line of a /proc file, in bytes (0 when absent)."""
    with open(path) as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def pss_bytes(pid: int) -> int:
    return _kb_field(f"/proc/{pid}/smaps_rollup", "Pss:")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    return _kb_field(f"/proc/{pid}/status", "VmRSS:")


def cpu_over(pid: int, seconds: float) -> float:
    """Fraction of one core that pid used over a window of `seconds` from now."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def add_parent_death_signal(parser) -> None:
    """--parent-death-signal: supervisor.parent_death_signal; 'none' runs without the guard process."""
    parser.add_argument("--parent-death-signal", default="SIGTERM",
                        type=lambda v: None if v.lower() == "none" else v,
                        help="supervisor.parent_death_signal; 'none' runs without the guard process")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    return (f"median {statistics.median(values) * scale:.1f} {unit}, p99 {pct(values, 99) * scale:.1f} "
            f"{unit}, min {min(values) * scale:.1f}, max {max(values) * scale:.1f} (n={len(values)})")


class Bench:
    """A supervisor on `services`, with console output sent to /dev/null."""

    def __init__(self, services: dict, supervisor: dict | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="unified-bench-"))
        self.state = self.dir / "state"
        config = {"supervisor": {"state_dir": str(self.state), "port": free_port(),
                                 "log": {"level": "WARNING"}, **(supervisor or {})},
                  "services": services}
        self.config = self.dir / "services.yaml"
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        _LEADERS.clear()  # pids of an earlier round may be reused
        started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, str(START), "run", "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return started

    def wait_children(self, count: int, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while len(children(self.proc.pid)) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"only {len(children(self.proc.pid))} of {count} children")
            time.sleep(0.001)  # a 1 ms poll: the watcher must not take a core from what it measures
        return time.perf_counter()

    def stop(self, timeout: float = 60.0) -> float:
        started = time.perf_counter()
        pidfd = os.pidfd_open(self.proc.pid)
        try:
            self.proc.send_signal(signal.SIGTERM)
            # Popen.wait(timeout) polls with sleeps of up to 50 ms; a pidfd wakes at the exit
            if not select.select([pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.proc.args, timeout)
        finally:
            os.close(pidfd)
        ended = time.perf_counter()
        self.proc.wait()
        return ended - started

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def sleeper(**extra) -> dict:
    return {"command": [SLEEP, "infinity"], "stop": {"timeout": "5s"}, **extra}
