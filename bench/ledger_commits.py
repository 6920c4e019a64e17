"""The ledger's commit time at the bus consumer's pace: is a checkpoint ever inside a commit?

The backend's TradeStore (services/backend/backend/trades.py) commits a batch of 2 fills every
2 ms (what 1,000 fills/s looks like to the consumer, bench/RESULTS.md), for ``--seconds``,
twice: as it is (WAL checkpoints on their own thread, walcheckpoint.py), and with SQLite's
automatic checkpoint inside the commit (``wal_autocheckpoint=1000``, no checkpoint thread:
the code before). Prints each one's commit times.

    python bench/ledger_commits.py --seconds 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, pct

sys.path.insert(0, str(ROOT / "services" / "backend"))

from backend.trades import TradeStore  # noqa: E402

BATCH = 2
EVERY = 0.002   # seconds between commits


def commits(path: Path, seconds: float, in_commit: bool) -> list[float]:
    store = TradeStore(path)
    if in_commit:   # the code before: no checkpoint thread, SQLite's default threshold
        assert store._checkpointer is not None
        store._checkpointer.stop()
        store._db.execute("PRAGMA wal_autocheckpoint=1000")
    took: list[float] = []
    n = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            fills = [{"fill_id": f"c-{n + k}", "symbol": "BENCH", "side": "buy", "quantity": 1.0,
                      "price": 100.0, "tick": n + k, "source": "bench"} for k in range(BATCH)]
            n += BATCH
            t0 = time.perf_counter()
            store.record_many(fills)
            took.append(time.perf_counter() - t0)
            time.sleep(EVERY)
    finally:
        store.close()
    return sorted(took)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    for name, in_commit in (("checkpoint thread", False), ("checkpoint in the commit", True)):
        with tempfile.TemporaryDirectory(prefix="ledger-") as tmp:
            load = os.getloadavg()[0]
            took = commits(Path(tmp) / "ledger.sqlite3", args.seconds, in_commit)
        print(f"{name}: {len(took)} commits, p50 {pct(took, 50) * 1e3:.2f} ms, p99 {pct(took, 99) * 1e3:.2f} ms, "
              f"p99.9 {pct(took, 99.9) * 1e3:.2f} ms, max {took[-1] * 1e3:.1f} ms, "
              f"over 10 ms: {sum(t > 0.010 for t in took)} (load {load:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
