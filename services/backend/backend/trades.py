"""The trades ledger in SQLite, idempotent on the client's ``fill_id``.

The trading bot retries deliveries after a crash, so the same fill can arrive twice;
a UNIQUE ``fill_id`` turns the second arrival into a read of the first.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .walcheckpoint import WRITER_PAGES, WalCheckpointer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trades (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fill_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    price REAL NOT NULL,
    realized_pnl REAL,
    tick INTEGER,
    source TEXT,
    filled_at TEXT,
    received_at REAL NOT NULL
);
"""

_COLUMNS = (
    "id", "fill_id", "symbol", "side", "quantity", "price",
    "realized_pnl", "tick", "source", "filled_at", "received_at",
)


class TradeStore:
    """One connection guarded by a lock: FastAPI runs sync handlers on a thread pool."""

    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._checkpointer: WalCheckpointer | None = None
        if str(path) != ":memory:":
            # WAL + NORMAL: a committed fill survives a kill -9 of this process.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints from another thread, so a commit never waits for one (walcheckpoint.py).
            self._db.execute(f"PRAGMA wal_autocheckpoint={WRITER_PAGES}")
        self._db.executescript(_SCHEMA)
        if str(path) != ":memory:":
            self._checkpointer = WalCheckpointer(path)
            self._checkpointer.start()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._db.close()

    @staticmethod
    def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
        return None if row is None else {k: row[k] for k in _COLUMNS}

    def record(self, fill: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Insert a fill; returns (row, created). A known fill_id returns the stored row."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO trades (fill_id, symbol, side, quantity, price,"
                " realized_pnl, tick, source, filled_at, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fill["fill_id"], fill["symbol"], fill["side"], fill["quantity"],
                    fill["price"], fill.get("realized_pnl"), fill.get("tick"),
                    fill.get("source"), fill.get("filled_at"), time.time(),
                ),
            )
            created = cursor.rowcount == 1
            row = self._db.execute(
                "SELECT * FROM trades WHERE fill_id = ?", (fill["fill_id"],)
            ).fetchone()
        return self._row(row), created  # type: ignore[return-value]

    def record_many(self, fills: list[dict[str, Any]]) -> int:
        """Insert fills in one transaction (the bus consumer's batch); known fill_ids are
        skipped. Returns how many were new. Committed when it returns."""
        received = time.time()
        rows = [(f["fill_id"], f["symbol"], f["side"], f["quantity"], f["price"],
                 f.get("realized_pnl"), f.get("tick"), f.get("source"), f.get("filled_at"),
                 received) for f in fills]
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO trades (fill_id, symbol, side, quantity, price,"
                    " realized_pnl, tick, source, filled_at, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return self._db.total_changes - before

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first (by arrival)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM trades ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [self._row(r) for r in rows]  # type: ignore[misc]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM trades").fetchone()[0])

    def summary(self) -> dict[str, Any]:
        with self._lock:
            agg = self._db.execute(
                "SELECT COUNT(*) AS n, SUM(realized_pnl) AS pnl,"
                " SUM(CASE WHEN side = 'buy' THEN 1 ELSE 0 END) AS buys,"
                " SUM(CASE WHEN side = 'sell' THEN 1 ELSE 0 END) AS sells"
                " FROM trades"
            ).fetchone()
            last = self._db.execute("SELECT * FROM trades ORDER BY id DESC LIMIT 1").fetchone()
        return {
            "count": int(agg["n"]),
            "buys": int(agg["buys"] or 0),
            "sells": int(agg["sells"] or 0),
            "realized_pnl": round(float(agg["pnl"] or 0.0), 6),
            "last_fill": self._row(last),
        }
