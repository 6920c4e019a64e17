"""Idle cost: 100 sleeping children, supervisor CPU and RSS over a window. The guard process
(parent_death_signal) is reported too: its RSS is mostly pages it shares with the supervisor,
so the honest sum is PSS (each shared page split between the processes mapping it).

    python bench/idle.py [--children 100] [--seconds 60] [--history-period 5s]

--history-period: `supervisor.history.period` (default 5s as in SPEC §9); `1h` leaves out
the history's samples during the window, to see what they cost.
"""

import argparse
import time

from _common import Bench, cpu_over, guard_pids, pss_bytes, rss_bytes, sleeper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--history-period", default=None, help="supervisor.history.period")
    args = parser.parse_args()
    supervisor = ({"history": {"period": args.history_period, "keep": "1h"}}
                  if args.history_period else None)
    bench = Bench({f"s{i:03d}": sleeper() for i in range(args.children)}, supervisor)
    try:
        bench.start()
        bench.wait_children(args.children)
        time.sleep(2.0)  # let start-up work settle before the idle window
        pid = bench.proc.pid
        cpu = cpu_over(pid, args.seconds)
        guards = guard_pids(pid)
        print(f"idle {args.children} children over {args.seconds:.0f} s: CPU {100 * cpu:.3f} % "
              f"of one core, RSS {rss_bytes(pid) / 1e6:.1f} MB")
        for guard in guards:
            print(f"  guard process: RSS {rss_bytes(guard) / 1e6:.1f} MB; supervisor + guard PSS "
                  f"{(pss_bytes(pid) + pss_bytes(guard)) / 1e6:.1f} MB "
                  f"(supervisor alone {pss_bytes(pid) / 1e6:.1f})")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
