"""Where a fill's latency goes: publish (outbox -> the broker's store) and consume (store ->
the backend's commit), from one run of bench/bus_latency.py's pipeline.

The broker stamps each stored message (its JetStream metadata timestamp); the fill carries the
wall time it entered the outbox, and the ledger row the time just before its commit. All three
clocks are this machine's wall clock.

    python bench/bus_stages.py              # 1,000 fills/s for 15 s
    python bench/bus_stages.py 500 30
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
from pathlib import Path

import bus_latency
import nats

from _common import pct


async def stored(url: str) -> dict[str, tuple[float, float]]:
    """fill_id -> (entered the outbox, stored by the broker), read with an ephemeral consumer."""
    nc = await nats.connect(url)
    sub = await nc.jetstream().pull_subscribe("fills.>", durable=None, stream="FILLS")
    out: dict[str, tuple[float, float]] = {}
    while True:
        try:
            msgs = await sub.fetch(1000, timeout=2)
        except (TimeoutError, nats.errors.Error):
            break
        for m in msgs:
            fill = json.loads(m.data)
            out[fill["fill_id"]] = (float(fill["filled_at"]), m.metadata.timestamp.timestamp())
            await m.ack()
    await nc.close()
    return out


def main() -> int:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 1000.0
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
    with tempfile.TemporaryDirectory(prefix="bus-stages-") as tmp:
        pipe = bus_latency.Pipeline(Path(tmp))
        try:
            print(json.dumps(bus_latency.run(pipe, rate, seconds)), flush=True)
            with sqlite3.connect(pipe.db) as db:
                committed = dict(db.execute("SELECT fill_id, received_at FROM trades"))
            times = asyncio.run(stored(pipe.url))
        finally:
            pipe.close()
    publish = sorted(at - made for made, at in times.values())
    consume = sorted(committed[f] - at for f, (_, at) in times.items() if f in committed)
    for name, values in (("publish", publish), ("consume", consume)):
        print(f"{name}: p50 {pct(values, 50) * 1000:.1f} ms, p99 {pct(values, 99) * 1000:.1f} ms, "
              f"max {values[-1] * 1000:.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
