"""Processes left behind after a graceful stop of children that spawn grandchildren.

    python bench/leftovers.py [--services 10]
"""

import argparse
import sys
from pathlib import Path

import psutil

from _common import Bench

SPAWNER = Path(__file__).resolve().parent.parent / "tests" / "children" / "spawner.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10)
    args = parser.parse_args()
    bench = Bench({})
    markers = [bench.dir / f"gc{i}.pid" for i in range(args.services)]
    bench.config.write_text(bench.config.read_text().replace('"services": {}', '"services": ' + str({
        f"p{i}": {"command": [sys.executable, str(SPAWNER), str(m)], "stop": {"timeout": "1s"}}
        for i, m in enumerate(markers)}).replace("'", '"')))
    try:
        bench.start()
        bench.wait_children(args.services)
        while not all(m.exists() and m.read_text().strip() for m in markers):
            pass
        grandchildren = [int(m.read_text()) for m in markers]
        bench.stop()
        alive = [p for p in grandchildren if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        print(f"leftovers after graceful stop of {args.services} services with a SIGTERM-ignoring "
              f"grandchild each: {len(alive)}")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
