"""What one spawn costs the supervisor's seam (proc/seam.py) against the floor's bare Popen:
100 `sleep infinity` children each way, alternating, medians of --rounds. Wall time, and the
CPU time of this process (all its threads: the I/O thread's too).

    python bench/spawn_cost.py [--rounds 7] [--src src]

- floor: Popen(argv, start_new_session, DEVNULL x3), as bench/start_stop.py's floors spawn;
- seam: ProcessSeam.spawn with a service's output sink (a pipe, a log file), the service's
  environment, and the guard told of each group (parent_death_signal);
- seam, no guard: the same with parent_death_signal: none.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SLEEP


def floor(count: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    kids = [subprocess.Popen([SLEEP, "infinity"], cwd=os.getcwd(), start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(count)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for kid in kids:
        kid.kill()
        kid.wait()
    return wall, cpu


def seam(count: int, guard: bool, logs: Path) -> tuple[float, float]:
    from unified_system.proc.output import ServiceOutput
    from unified_system.proc.seam import ProcessSeam

    env = dict(os.environ)
    the_seam = ProcessSeam(signal.SIGTERM if guard else None)
    outputs = [ServiceOutput(logs / f"s{i}.log", 10_000_000, 1, None, b"s | ") for i in range(count)]
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        spawned = [the_seam.spawn([SLEEP, "infinity"], executable=SLEEP, cwd=Path(os.getcwd()),
                                  env=env, sink=outputs[i], on_exit=lambda status: None,
                                  kill_after=5.0) for i in range(count)]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        for one in spawned:
            os.killpg(one.pgid, signal.SIGKILL)
        time.sleep(0.3)  # the I/O thread reaps them
    finally:
        the_seam.close()
        for output in outputs:
            output.log.close()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--src", default=str(ROOT / "src"))
    args = parser.parse_args()
    sys.path.insert(0, args.src)
    logs = Path(tempfile.mkdtemp(prefix="unified-spawn-"))
    kinds = {"floor (bare Popen)": lambda: floor(args.children),
             "seam": lambda: seam(args.children, True, logs),
             "seam, no guard": lambda: seam(args.children, False, logs)}
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind, run in kinds.items():
            results[kind].append(run())
    for kind, rows in results.items():
        print(f"{kind:20s} {args.children} spawns: wall median "
              f"{statistics.median(r[0] for r in rows) * 1000:.1f} ms, CPU of this process "
              f"{statistics.median(r[1] for r in rows) * 1000:.1f} ms ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
