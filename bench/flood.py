"""Output flood: one child writes 100-byte lines as fast as it can; how much reaches its log,
and at what supervisor CPU.

    python bench/flood.py [--seconds 10] [--rate 150]   (--rate: the child's MB/s; default: flat out)
"""

import argparse
import sys
import time
from pathlib import Path

from _common import Bench, cpu_seconds

FLOOD = Path(__file__).resolve().parent / "children" / "flood_forever.py"


def log_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in (state / "logs").glob("flood.log*"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0, help="MB/s the child writes (0: flat out)")
    args = parser.parse_args()
    command = [sys.executable, str(FLOOD)] + ([str(args.rate)] if args.rate else [])
    bench = Bench({"flood": {"command": command}},
                  supervisor={"log": {"level": "WARNING", "max_bytes": "4GB", "backups": 2}})
    try:
        bench.start()
        bench.wait_children(1)
        time.sleep(1.0)
        pid = bench.proc.pid
        b0, c0, t0 = log_bytes(bench.state), cpu_seconds(pid), time.monotonic()
        time.sleep(args.seconds)
        b1, c1, t1 = log_bytes(bench.state), cpu_seconds(pid), time.monotonic()
        rate = (b1 - b0) / (t1 - t0) / 1e6
        cpu = (c1 - c0) / (t1 - t0)
        print(f"flood: {rate:.0f} MB/s captured into the log, supervisor CPU {100 * cpu:.0f} % of one core "
              f"({100 * cpu * 150 / rate:.0f} % of a core per 150 MB/s)")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
