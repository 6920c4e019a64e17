"""Crash to new process: SIGKILL a child (backoff.initial 0), time until the new pid exists.

    python bench/crash_restart.py [--kills 50]
"""

import argparse
import os
import signal
import time

from _common import Bench, children, sleeper, summary


def crash_latencies(bench: Bench, kills: int) -> list[float]:
    """SIGKILL the child `kills` times; each time, how long until its replacement exists."""
    latencies = []
    for _ in range(kills):
        old = children(bench.proc.pid)[0]
        time.sleep(0.05)  # let the supervisor go idle between kills: measure a cold restart
        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        while True:
            now = children(bench.proc.pid)
            if now and now[0] != old:
                break
            time.sleep(0.0002)  # 0.2 ms resolution, without taking a core from the supervisor
        latencies.append(time.perf_counter() - t0)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    args = parser.parse_args()
    bench = Bench({"victim": sleeper(restart={"policy": "always", "backoff": {"initial": 0},
                                              "max_restarts": 100000})})
    try:
        bench.start()
        bench.wait_children(1)
        latencies = crash_latencies(bench, args.kills)
        print(f"crash-to-restart: {summary(latencies)}")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
