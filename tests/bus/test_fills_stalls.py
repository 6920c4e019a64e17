"""What used to stall a fill between the broker and the ledger (bench/RESULTS.md, branch
buslat2: the consume stage's p99 at 1,000 fills/s).

1. The consumer shared uvicorn's event loop: any request or heartbeat delayed the fills behind
   it, and fills stopped altogether while that loop did not run. It now has its own thread.
2. SQLite's automatic WAL checkpoint ran inside a commit every ~0.6 s at 1,000 fills/s, 15-20 ms
   of copying and fsync with the fills of that batch waiting. A thread of its own checkpoints.
3. A full garbage collection scanned the ~56,000 objects of start-up, 30-40 ms with the GIL
   held. The app freezes them once it has started.
"""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import nats

from harness import ROOT, wait_until

if str(ROOT / "services" / "backend") not in sys.path:
    sys.path.insert(0, str(ROOT / "services" / "backend"))

from backend import bus  # noqa: E402
from backend.app import create_app  # noqa: E402
from backend.settings import from_env  # noqa: E402
from backend.trades import TradeStore  # noqa: E402


def fill(n: int) -> dict[str, object]:
    return {"fill_id": f"stall-{n}", "symbol": "BENCH", "side": "buy", "quantity": 1.0,
            "price": 100.0, "tick": n, "source": "test"}


def rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0])


def test_fills_are_committed_while_the_apps_event_loop_does_not_run(broker, tmp_path) -> None:
    url, _ = broker
    app = create_app(from_env({"DATA_DIR": str(tmp_path / "backend"), "NATS_URL": url}))
    loop = asyncio.new_event_loop()      # stands for uvicorn's: it runs start-up, then nothing
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    try:
        async def publish() -> None:
            nc = await nats.connect(url)
            js = nc.jetstream()
            await bus.ensure_stream(js, bus.FILLS)
            for n in range(20):
                await js.publish("fills.BENCH", json.dumps(fill(n)).encode(),
                                 headers={"Nats-Msg-Id": f"stall-{n}"}, timeout=10)
            await nc.close()
        # From this thread, on another loop: the app's own loop stays idle the whole time.
        asyncio.run(asyncio.wait_for(publish(), 60))
        db = tmp_path / "backend" / "backend.sqlite3"
        wait_until(lambda: rows(db) == 20, 30, "20 fills committed with the app's loop idle",
                   seen=lambda: rows(db))
    finally:
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()
        gc.unfreeze()


def test_the_ledger_file_gets_its_commits_with_no_commit_checkpointing(tmp_path) -> None:
    # Under SQLite's own threshold (1,000 pages), no commit checkpoints: the rows stay in the
    # WAL. The database file alone holds them only if another thread checkpointed.
    db = tmp_path / "ledger.sqlite3"
    store = TradeStore(db)
    try:
        for n in range(0, 100, 2):
            store.record_many([fill(n), fill(n + 1)])

        def rows_in_file_alone() -> int:
            copy = tmp_path / "copy.sqlite3"   # the main file without its -wal beside it
            copy.unlink(missing_ok=True)
            shutil.copyfile(db, copy)
            try:
                return rows(copy)
            except sqlite3.OperationalError:   # not even the table is in the file yet
                return 0
        wait_until(lambda: rows_in_file_alone() == 100, 30, "the WAL checkpointed into the file",
                   seen=rows_in_file_alone)
    finally:
        store.close()
    assert rows(db) == 100


def test_the_app_freezes_its_start_up_objects_out_of_collections(tmp_path) -> None:
    gc.unfreeze()
    app = create_app(from_env({"DATA_DIR": str(tmp_path / "backend")}))
    loop = asyncio.new_event_loop()
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    try:
        assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
    finally:
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()
        gc.unfreeze()
