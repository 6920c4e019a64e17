"""CPU of one history sample (api/history.py `HistoryStore.tick`, and the live figures of
api/live.py it reads) over 100 sleeping process trees, in process, without a supervisor.

    python bench/history_sampling.py [--children 100] [--ticks 40] [--src DIR]

--src: the `src` directory of another checkout, to compare with the code of before.
Prints the median CPU of a tick and of the figures alone, and what one tick every 5 s
(the default `supervisor.history.period`) costs as a share of one core.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, SLEEP


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    args = parser.parse_args()
    sys.path.insert(0, str(args.src.resolve()))
    from unified_system.api.history import HistoryStore
    from unified_system.api.live import LiveStats

    procs = [subprocess.Popen([SLEEP, "infinity"]) for _ in range(args.children)]
    snapshot = [{"name": f"s{i:03d}", "state": "running", "restarts": 0, "ready": True,
                 "instances": [{"index": 0, "pid": p.pid, "state": "running"}]}
                for i, p in enumerate(procs)]
    try:
        live = LiveStats()
        store = HistoryStore(5.0, 3600.0, lambda: snapshot, live.figures, dict, lambda event: None)
        store.tick(time.time())   # the first sight of each process
        ticks, figures = [], []
        for _ in range(args.ticks):
            live._taken = -1e9     # as 5 s later: the tick samples the trees itself
            c0 = time.process_time()
            store.tick(time.time())
            ticks.append(time.process_time() - c0)
            live._taken = -1e9
            c0 = time.process_time()
            live.figures(snapshot)
            figures.append(time.process_time() - c0)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    tick, fig = statistics.median(ticks), statistics.median(figures)
    print(f"{args.src}: one history tick over {args.children} sleeping trees: median CPU "
          f"{tick * 1000:.2f} ms (the figures alone {fig * 1000:.2f} ms); every 5 s that is "
          f"{tick / 5.0 * 100:.3f} % of one core")


if __name__ == "__main__":
    main()
