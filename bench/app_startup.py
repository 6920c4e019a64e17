"""The real application: from `python start_system.py` to all four services running and ready,
builds cached; then the resident memory of the supervisor and of each service.

    python bench/app_startup.py [--rounds 5] [--env NAME]

Runs on a copy of the repo's services.yaml, .env.example (as .env), services/ and frontend/
in a temp dir (node_modules and src/ linked), on free ports. One warm-up run fills the build
cache (state_dir/builds); each timed run then starts the supervisor afresh on that state.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from _common import ROOT, START, free_port

sys.path.insert(0, str(ROOT / "src"))
from unified_system.proc.inspect import tree_rss  # noqa: E402  (RSS of a process tree)

PORT_VARS = ("PORT", "PYTHON_PORT", "BOT_PORT", "FRONTEND_PORT", "SUPERVISOR_PORT", "NATS_PORT",
             "NATS_MONITOR_PORT")
SKIP = shutil.ignore_patterns("node_modules", "dist", "data", "__pycache__", "*.pyc",
                              ".unified-system")


def app_copy(dest: Path) -> None:
    shutil.copy2(ROOT / "services.yaml", dest / "services.yaml")
    shutil.copy2(ROOT / ".env.example", dest / ".env")
    for part in ("services", "frontend"):
        shutil.copytree(ROOT / part, dest / part, ignore=SKIP, symlinks=True)
    for pkg in ("services/node-server", "frontend"):
        os.symlink(ROOT / pkg / "node_modules", dest / pkg / "node_modules")
    os.symlink(ROOT / "src", dest / "src")


def services(port: int, key: str) -> list[dict] | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/services",
                                     headers={"X-API-Key": key})   # reads need the key
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            return json.load(r)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def one_run(directory: Path, env: dict[str, str], args: list[str], timeout: float = 180.0):
    """(seconds to all up, {service: seconds to up}, {name: rss}, seconds to stop)."""
    port = int(env["SUPERVISOR_PORT"])
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(START), *args], cwd=directory, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        up_at: dict[str, float] = {}
        while True:
            listed = services(port, env["SUPERVISOR_API_KEY"]) or []
            now = time.perf_counter() - started
            for s in listed:
                if s["state"] == "running" and s["ready"]:
                    up_at.setdefault(s["name"], now)
            wanted = [s for s in listed if s["state"] not in ("disabled", "stopped")]
            if wanted and all(s["name"] in up_at for s in wanted):
                break
            if proc.poll() is not None or now > timeout:
                raise RuntimeError(f"not all up after {now:.1f}s: "
                                   f"{[(s['name'], s['state']) for s in listed]}")
            time.sleep(0.02)  # a poll period: the condition above decides
        total = time.perf_counter() - started
        rss = {"supervisor": psutil.Process(proc.pid).memory_info().rss}
        rss.update({s["name"]: tree_rss(s["pid"]) or 0 for s in wanted})
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        if code != 0:
            raise RuntimeError(f"supervisor exited {code}")
        return total, up_at, rss, time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--env", help="environment overlay (e.g. production)")
    opts = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="unified-app-bench-"))
    try:
        app_copy(directory)
        env = {**os.environ, **{v: str(free_port()) for v in PORT_VARS},
               "SUPERVISOR_API_KEY": secrets.token_urlsafe(32), "LOG_LEVEL": "INFO"}
        env.pop("NODE_ENV", None)
        args = ["--env", opts.env] if opts.env else []  # `python start_system.py` is `run`
        warm, *_ = one_run(directory, env, args)  # fills the build cache
        print(f"warm-up (builds run): {warm:.2f} s")
        totals, ups, rsses, stops = [], [], [], []
        for _ in range(opts.rounds):
            total, up_at, rss, stop = one_run(directory, env, args)
            totals.append(total)
            ups.append(up_at)
            rsses.append(rss)
            stops.append(stop)
        med = statistics.median
        command = " ".join(["python start_system.py", *args])
        print(f"`{command}` to all services running and ready, "
              f"builds cached: median {med(totals):.2f} s (min {min(totals):.2f}, "
              f"max {max(totals):.2f}, n={len(totals)})")
        for name in ups[0]:
            print(f"  {name:<12} up at {med(u[name] for u in ups):.2f} s (median)")
        print("resident memory once up (median; services: the whole process tree):")
        for name in rsses[0]:
            print(f"  {name:<12} {mib(med(r[name] for r in rsses))}")
        total_rss = [sum(r.values()) for r in rsses]
        print(f"  {'total':<12} {mib(med(total_rss))}")
        print(f"SIGTERM to supervisor exit (all stopped): median {med(stops) * 1000:.0f} ms")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
