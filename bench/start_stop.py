"""100 children: time from `run` to all spawned, and graceful stop of all of them.

    python bench/start_stop.py [--children 100] [--rounds 5] [--parent-death-signal none]
"""

import argparse
import json
import statistics
import time
from datetime import datetime

from _common import Bench, add_parent_death_signal, sleeper


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
    add_parent_death_signal(parser)
    args = parser.parse_args()
    full, after_boot, stops = [], [], []
    for _ in range(args.rounds):
        bench = Bench({f"s{i:03d}": sleeper() for i in range(args.children)},
                      supervisor={"log": {"level": "INFO"}, "parent_death_signal": args.parent_death_signal})
        try:
            t0 = bench.start()
            wall0 = time.time() - (time.perf_counter() - t0)
            t1 = bench.wait_children(args.children)
            wall1 = wall0 + (t1 - t0)
            full.append(t1 - t0)
            after_boot.append(wall1 - supervisor_started_at(bench))
            logged_at(bench, "control API listening")  # stop a running supervisor, not one
            stops.append(bench.stop())                  # still opening its API after the spawns
        finally:
            bench.close()
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"
    print(f"start {args.children}: from exec of `run`: {ms(full)}")
    print(f"start {args.children}: from supervisor ready (imports and config done): {ms(after_boot)}")
    print(f"stop {args.children}: SIGTERM to supervisor exit (once its API is up): {ms(stops)}")


if __name__ == "__main__":
    main()
