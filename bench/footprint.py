"""What the resident supervisor holds: idle RSS/PSS of every supervisor process (the
supervisor and its guard) with N sleeping children, and the modules it has imported,
grouped by top-level package (dumped by tests/children/modules_dump.py on SIGUSR2).

    python bench/footprint.py [--children 100] [--settle 3] [--modules] [--clean-python]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from _common import ROOT, Bench, add_clean_python, guard_pids, pss_bytes, reexec_clean, rss_bytes, sleeper

DUMPER = ROOT / "tests" / "children" / "modules_dump.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--modules", action="store_true", help="print every top-level package")
    add_clean_python(parser)
    args = parser.parse_args()
    reexec_clean(args)
    bench = Bench({f"s{i:03d}": sleeper() for i in range(args.children)})
    dump = bench.dir / "modules.txt"
    try:
        bench.proc = subprocess.Popen([sys.executable, str(DUMPER), "run", "-c", str(bench.config)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={**os.environ, "MODULES_DUMP": str(dump)})
        bench.wait_children(args.children)
        time.sleep(args.settle)  # late imports, gc.freeze and the first sampler pass
        pid = bench.proc.pid
        procs = [pid, *guard_pids(pid)]
        rss = sum(map(rss_bytes, procs)) / 1e6
        pss = sum(map(pss_bytes, procs)) / 1e6
        print(f"{args.children} children: all supervisor processes ({len(procs)}) RSS {rss:.1f} MB, "
              f"PSS {pss:.1f} MB; supervisor RSS {rss_bytes(pid) / 1e6:.1f} PSS {pss_bytes(pid) / 1e6:.1f}"
              + "".join(f"; guard RSS {rss_bytes(g) / 1e6:.1f} PSS {pss_bytes(g) / 1e6:.1f}"
                        for g in procs[1:]))
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        names = dump.read_text().split()
        tops = Counter(name.split(".")[0] for name in names)
        print(f"{len(names)} modules in sys.modules")
        shown = tops.most_common() if args.modules else tops.most_common(25)
        print(", ".join(f"{top} {n}" for top, n in shown))
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
