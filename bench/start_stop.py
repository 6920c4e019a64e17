"""100 children: time from `run` to all spawned, and graceful stop of all of them.

    python bench/start_stop.py [--children 100] [--rounds 5] [--parent-death-signal none]
                               [--child sleep|python] [--clean-python]

--child python runs each service as a Python program (bench/children/py_sleeper.py) instead
of `sleep infinity`, in the supervisor and in every floor alike: 100 interpreters starting
at once contend with the spawner for the two cores.

Each round also times three floors on the same file, each an interpreter that starts each
command with a bare Popen and does nothing else before that but:
- schema: validate the file with unified-system's own loader and pydantic schema, so
  unified-system/floor is the supervisor's own overhead;
- pydantic: read the file with PyYAML's C loader and validate it with a one-field pydantic
  model, the least any program that validates its config with pydantic can do;
- bare: read the file with PyYAML's C loader, no validation.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime

from _common import ROOT, Bench, add_clean_python, add_parent_death_signal, children, reexec_clean, sleeper

PY_SLEEPER = str(ROOT / "bench" / "children" / "py_sleeper.py")

SPAWN = """
import os
kids = [subprocess.Popen(list(command), cwd=os.getcwd(), start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for command in commands]
sys.stdin.read()
for kid in kids:
    kid.kill()
    kid.wait()
"""
FLOORS = {
    "schema": """
import subprocess, sys
from unified_system.config.loader import load_config
commands = [s.command for s in load_config(sys.argv[1]).config.services.values()]
""",
    "pydantic": """
import subprocess, sys, yaml
from pydantic import BaseModel
class Service(BaseModel):
    command: list[str]
with open(sys.argv[1]) as fh:
    raw = yaml.load(fh, Loader=yaml.CSafeLoader)
commands = [Service.model_validate(s).command for s in raw["services"].values()]
""",
    "bare": """
import subprocess, sys, yaml
with open(sys.argv[1]) as fh:
    raw = yaml.load(fh, Loader=yaml.CSafeLoader)
commands = [s["command"] for s in raw["services"].values()]
""",
}


def floor(bench: Bench, count: int, kind: str = "schema") -> float:
    """Seconds from exec of a floor script to its `count` children."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", FLOORS[kind] + SPAWN, str(bench.config)], env=env,
                            stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(children(proc.pid)) < count:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"floor: only {len(children(proc.pid))} of {count} children")
            time.sleep(0.001)
        return time.perf_counter() - started
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def logged_at(bench: Bench, event: str) -> float:
    """Wall time of the supervisor's first log record of `event`."""
    path = bench.state / "logs" / "supervisor.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the log is written by a listener thread: may lag
        for line in path.read_text().splitlines() if path.exists() else ():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # the last line, half written
                break
            if record.get("event") == event:
                return datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
        time.sleep(0.01)
    raise RuntimeError(f"no {event!r} record")


def supervisor_started_at(bench: Bench) -> float:
    """Wall time at which the supervisor logged that it started (after its imports)."""
    return logged_at(bench, "supervisor started")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=("sleep", "python"), default="sleep")
    add_parent_death_signal(parser)
    add_clean_python(parser)
    args = parser.parse_args()
    reexec_clean(args)
    extra = {"command": [sys.executable, PY_SLEEPER]} if args.child == "python" else {}
    full, after_boot, stops = [], [], []
    floors: dict[str, list[float]] = {kind: [] for kind in FLOORS}
    for round_ in range(args.rounds):
        bench = Bench({f"s{i:03d}": sleeper(**extra) for i in range(args.children)},
                      supervisor={"log": {"level": "INFO"}, "parent_death_signal": args.parent_death_signal})
        try:
            if round_ % 2:  # alternate which goes first: the machine drifts
                for kind, times in floors.items():
                    times.append(floor(bench, args.children, kind))
            t0 = bench.start()
            wall0 = time.time() - (time.perf_counter() - t0)
            t1 = bench.wait_children(args.children)
            wall1 = wall0 + (t1 - t0)
            full.append(t1 - t0)
            after_boot.append(wall1 - supervisor_started_at(bench))
            logged_at(bench, "control API listening")  # stop a running supervisor, not one
            stops.append(bench.stop())                  # still opening its API after the spawns
            if not round_ % 2:
                for kind, times in floors.items():
                    times.append(floor(bench, args.children, kind))
        finally:
            bench.close()
    def ms(xs: list[float]) -> str:
        return f"median {statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"

    print(f"children: {args.child}; parent_death_signal: {args.parent_death_signal}")
    print(f"start {args.children}: from exec of `run`: {ms(full)}")
    print(f"start {args.children}: from supervisor ready (imports and config done): {ms(after_boot)}")
    ours = statistics.median(full)
    for kind, times in floors.items():
        print(f"floor {args.children} ({kind}): {ms(times)}; unified-system/floor "
              f"{ours / statistics.median(times):.2f}x")
    print(f"stop {args.children}: SIGTERM to supervisor exit (once its API is up): {ms(stops)}")


if __name__ == "__main__":
    main()
