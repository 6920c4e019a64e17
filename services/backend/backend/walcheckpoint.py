"""WAL checkpoints off the commit path: a thread with its own SQLite connection.

SQLite's automatic checkpoint runs inside the COMMIT that takes the write-ahead log past
``wal_autocheckpoint`` pages: that commit copies the pages back into the database file and
fsyncs both, 15-20 ms on this VM. At 1,000 fills/s (a batch of ~2 fills a commit, ~2.5 WAL
pages each) that was every ~0.6 s, and the fills of that batch waited for it: most of the
consume stage's p99 (bench/RESULTS.md, branch buslat2). Here a PASSIVE checkpoint runs every
``PERIOD`` from another connection, which never blocks the writer.

A PASSIVE checkpoint cannot restart the log while the writer keeps appending to it, so under a
steady stream of commits the WAL would grow; the writer keeps an automatic checkpoint at
``WRITER_PAGES``, a cheap one by then (the pages are already copied back), so the file stays
below ~16 MB.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("backend.ledger")

PERIOD = 0.5          # seconds between background checkpoints
WRITER_PAGES = 4000   # the writer's own automatic checkpoint (SQLite's default: 1,000)


class WalCheckpointer(threading.Thread):
    """``start()``, then ``stop()``: one PASSIVE checkpoint every ``period`` seconds."""

    def __init__(self, path: Path | str, period: float = PERIOD) -> None:
        super().__init__(name="wal-checkpoint", daemon=True)
        self.path = str(path)
        self.period = period
        self.checkpoints = 0
        self._stopping = threading.Event()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopping.wait(self.period):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # a busy or full disk: the writer's own checkpoint remains
                    log.warning("ledger: background WAL checkpoint failed: %s", exc)
        finally:
            db.close()
