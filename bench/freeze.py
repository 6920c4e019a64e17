"""Freeze detection: SIGSTOP a child whose heartbeat is timeout 1 s / hard_timeout 2 s; time
from the SIGSTOP to the new incarnation running (READY=1).

    python bench/freeze.py [--runs 20]
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from _common import Bench, children

HEARTBEAT = Path(__file__).resolve().parent.parent / "tests" / "children" / "heartbeat.py"


def running_records(bench: Bench) -> list[dict]:
    path = bench.state / "logs" / "supervisor.log"
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "state" and record.get("state") == "running":
            out.append(record)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bench = Bench({"frozen": {
        "command": [sys.executable, str(HEARTBEAT), "0.1", str(Path("/nonexistent/pause"))],
        "readiness": {"notify": True},
        "heartbeat": {"timeout": "1s", "hard_timeout": "2s"},
        "restart": {"backoff": {"initial": 0}, "max_restarts": 1000},
    }}, supervisor={"log": {"level": "INFO"}})
    try:
        bench.start()
        bench.wait_children(1)
        while not running_records(bench):
            time.sleep(0.01)
        results = []
        for _ in range(args.runs):
            seen = len(running_records(bench))
            victim = children(bench.proc.pid)[0]
            time.sleep(0.5)  # let a few heartbeats arrive first: measure from a steady state
            t0 = time.time()
            os.kill(victim, signal.SIGSTOP)
            while len(running_records(bench)) <= seen:
                time.sleep(0.005)
            rec = running_records(bench)[seen]
            t1 = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
            results.append(t1 - t0)
        print(f"SIGSTOP to new incarnation running (timeout 1s, hard 2s, backoff 0): median "
              f"{statistics.median(results):.3f} s, max {max(results):.3f} s (n={len(results)})")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
