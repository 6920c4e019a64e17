"""How fast a client command answers (issue 20, part 4): `status` with hyperfine, and `logs -f`
to its first line, against a running supervisor of N services; optionally A/B against another
checkout in the same minute, each side against its own supervisor.

    python bench/cli_quick.py                                   # this checkout
    python bench/cli_quick.py --clean-python                    # without the sandbox's .pth hook
    git archive main | tar -x -C /tmp/quick-base                # then, same minute:
    python bench/cli_quick.py --clean-python --base /tmp/quick-base
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cleanpy import clean_python

from _common import ROOT, Bench, sleeper

LINE = "print('ready', flush=True); import time; time.sleep(86400)"


class Side(Bench):
    """A supervisor run by the start_system.py of one checkout."""

    def __init__(self, root: Path, python: str, services: int) -> None:
        named = {f"s{i}": sleeper() for i in range(services - 1)}
        named["talker"] = {"command": [sys.executable, "-c", LINE], "stop": {"timeout": "5s"}}
        super().__init__(named)
        self.root, self.python = root, python

    def begin(self) -> None:
        self.proc = subprocess.Popen([self.python, str(self.root / "start_system.py"), "run", "-c",
                                      str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while self.command("status").returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the supervisor of {self.root} did not answer status")
            time.sleep(0.2)   # polling an outside program's readiness, not a sync point

    def argv(self, *args: str) -> list[str]:
        return [self.python, str(self.root / "start_system.py"), *args, "-c", str(self.config)]

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=60)

    def first_line(self) -> float:
        """Seconds from exec of `logs talker -n 1 -f` to its first line on stdout."""
        started = time.perf_counter()
        follow = subprocess.Popen(self.argv("logs", "talker", "-n", "1", "-f"),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = follow.stdout.readline() if follow.stdout else ""
            took = time.perf_counter() - started
            if "ready" not in line:
                raise RuntimeError(f"logs -f printed {line!r}")
            return took
        finally:
            follow.send_signal(signal.SIGINT)
            follow.wait(30)


def hyperfine(sides: dict[str, Side], warmup: int, runs: int) -> dict[str, dict[str, float]]:
    out = Path(tempfile.mkdtemp(prefix="cli-quick-")) / "hf.json"
    cmd = ["hyperfine", "-N", "-w", str(warmup), "-r", str(runs), "--export-json", str(out)]
    for name, side in sides.items():
        cmd += ["-n", name, " ".join(side.argv("status"))]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    results = json.loads(out.read_text())["results"]
    shutil.rmtree(out.parent, ignore_errors=True)
    return {r["command"]: {"median": r["median"], "mean": r["mean"], "min": r["min"],
                           "max": r["max"]} for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean-python", action="store_true",
                        help="run supervisor and client with bench/_cleanpy.py's interpreter")
    parser.add_argument("--base", type=Path, help="another checkout, measured in the same minute")
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--follows", type=int, default=10, help="logs -f starts to time")
    args = parser.parse_args()
    if shutil.which("hyperfine") is None:
        sys.exit("hyperfine is missing: apt-get install -y hyperfine")
    python = clean_python() if args.clean_python else sys.executable
    roots = {"this": ROOT}
    if args.base is not None:
        compileall.compile_dir(str(args.base / "src"), quiet=1)   # as _common does for ROOT
        roots["base"] = args.base.resolve()
    sides = {name: Side(root, python, args.services) for name, root in roots.items()}
    try:
        for side in sides.values():
            side.begin()
        load = os.getloadavg()[0]
        print(f"python: {python}; load {load:.1f}; {args.services} services")
        for name, fig in hyperfine(sides, args.warmup, args.runs).items():
            print(f"status [{name}]: median {fig['median'] * 1000:.1f} ms, mean "
                  f"{fig['mean'] * 1000:.1f}, min {fig['min'] * 1000:.1f}, "
                  f"max {fig['max'] * 1000:.1f} (hyperfine -w {args.warmup} -r {args.runs})")
        for name, side in sides.items():
            times = [side.first_line() for _ in range(args.follows)]
            print(f"logs -f to first line [{name}]: median {statistics.median(times) * 1000:.1f} "
                  f"ms, min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f} "
                  f"(n={len(times)})")
        print(f"load after: {os.getloadavg()[0]:.1f}")
    finally:
        for side in sides.values():
            if side.proc is not None and side.proc.poll() is None:
                side.stop()
            side.close()


if __name__ == "__main__":
    main()
