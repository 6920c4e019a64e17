"""Runs `unified_system.cli.main(argv)` as start_system.py would, and on SIGUSR2 writes the
sorted names in sys.modules to $MODULES_DUMP (then renames it into place, so a reader never
sees half a list). The test of what the resident supervisor imports reads it (SPEC §9
"Footprint"). The handler only runs between bytecodes on the main thread: no lock is held."""

import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _dump(_signum: int, _frame: object) -> None:
    target = os.environ["MODULES_DUMP"]
    with open(target + ".tmp", "w") as fh:
        fh.write("\n".join(sorted(sys.modules)) + "\n")
    os.replace(target + ".tmp", target)


if __name__ == "__main__":
    signal.signal(signal.SIGUSR2, _dump)
    sys.path.insert(0, str(ROOT / "src"))
    from unified_system.cli import main

    raise SystemExit(main(sys.argv[1:]))
