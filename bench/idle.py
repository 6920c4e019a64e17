"""Idle cost: 100 sleeping children, supervisor CPU and RSS over a window.

    python bench/idle.py [--children 100] [--seconds 60]
"""

import argparse
import time

from _common import Bench, cpu_over, rss_bytes, sleeper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    bench = Bench({f"s{i:03d}": sleeper() for i in range(args.children)})
    try:
        bench.start()
        bench.wait_children(args.children)
        time.sleep(2.0)  # let start-up work settle before the idle window
        pid = bench.proc.pid
        cpu = cpu_over(pid, args.seconds)
        print(f"idle {args.children} children over {args.seconds:.0f} s: CPU {100 * cpu:.3f} % "
              f"of one core, RSS {rss_bytes(pid) / 1e6:.1f} MB")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
