"""What importing one more module costs the resident supervisor: wall time and RSS, in a
fresh interpreter that first imports what the supervisor holds (api/server.py and all it
pulls in), from the checkout given by --src.

    python bench/import_cost.py h11 [--src src] [--rounds 7]

To price a dependency the checkout does not yet import, point --src at a checkout from
before it (e.g. `git archive <commit> | tar -x -C /tmp/before`, then --src /tmp/before/src).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from _resident import run_resident

CHILD = r'''
before, r0, t = set(sys.modules), rss(), time.perf_counter()
__import__(MODULE)
ms = (time.perf_counter() - t) * 1000
gc.collect()
print(json.dumps({"ms": ms, "rss": rss() - r0,
                  "new": sorted({m.split(".")[0] for m in set(sys.modules) - before})}))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("--src", default=str(Path(__file__).resolve().parent.parent / "src"))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for _ in range(args.rounds):
        rows.append(run_resident(CHILD, args.src, MODULE=args.module))
    ms = statistics.median(r["ms"] for r in rows)
    rss = statistics.median(r["rss"] for r in rows) / 1e6
    print(f"import {args.module} after the supervisor's modules ({args.src}): median {ms:.1f} ms "
          f"(min {min(r['ms'] for r in rows):.1f}), RSS +{rss:.2f} MB, {args.rounds} rounds; "
          f"new top-level modules: {' '.join(rows[0]['new'])}")


if __name__ == "__main__":
    main()
