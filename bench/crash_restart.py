"""Crash to new process: SIGKILL a child (backoff.initial 0), time until the new pid exists.

    python bench/crash_restart.py [--kills 50]
"""

import argparse
import os
import signal
import time

from _common import Bench, children, sleeper, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    args = parser.parse_args()
    bench = Bench({"victim": sleeper(restart={"policy": "always", "backoff": {"initial": 0},
                                              "max_restarts": 100000})})
    try:
        bench.start()
        bench.wait_children(1)
        latencies = []
        for _ in range(args.kills):
            old = children(bench.proc.pid)[0]
            time.sleep(0.05)  # let the supervisor go idle between kills: measure a cold restart
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            while True:
                now = children(bench.proc.pid)
                if now and now[0] != old:
                    break
            latencies.append(time.perf_counter() - t0)
        print(f"crash-to-restart: {summary(latencies)}")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
