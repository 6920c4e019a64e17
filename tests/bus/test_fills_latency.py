"""Fill latency on the bus (bench/RESULTS.md, "bus latency, the publisher's window").

1. The bot's publisher sends a window of fills without giving the event loop a turn between
   them, so they leave in one write (a regression test: nats-py's ``wait_stall`` wrapped each
   publish in a task, the loop flushed each fill alone, and at 1,000 fills/s the publisher
   spent its core on send() calls; the publish stage's p99 was 279 ms).
2. A guard: a lone fill is committed when it arrives, not when the consumer's fetch expires
   (nats-py's ``fetch(n)`` with the broker's no_wait+expires returns what is there; a change
   to a fetch that waits for a full batch would fail this, with a 30 s fetch and a 10 s deadline).
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import nats

from harness import ROOT, wait_until

for _service in ("backend", "trading-bot"):  # the consumer and the publisher, in-process
    if str(ROOT / "services" / _service) not in sys.path:
        sys.path.insert(0, str(ROOT / "services" / _service))

from backend import fills_consumer  # noqa: E402
from backend.app import FillIn  # noqa: E402
from backend.fills_consumer import DURABLE, FillsConsumer  # noqa: E402
from backend.trades import TradeStore  # noqa: E402
from trading_bot import bus as bot_bus  # noqa: E402


def test_a_lone_fill_is_committed_before_the_fetch_expires(broker, tmp_path, monkeypatch) -> None:
    url, monitor = broker
    monkeypatch.setattr(fills_consumer, "FETCH_WAIT", 30.0)
    store = TradeStore(tmp_path / "ledger.sqlite3")
    consumer = FillsConsumer(url, store, FillIn.model_validate_json)
    consumer.start()
    try:
        def pulling() -> int:  # the consumer sits in its fetch: a pull request waits on the broker
            info = httpx.get(f"http://127.0.0.1:{monitor}/jsz?consumers=true").json()
            for stream in (info.get("account_details") or [{}])[0].get("stream_detail") or []:
                for c in stream.get("consumer_detail") or []:
                    if c["name"] == DURABLE:
                        return int(c.get("num_waiting", 0))
            return 0
        wait_until(pulling, 30, "the consumer's pull request", seen=pulling)

        async def publish() -> None:
            nc = await nats.connect(url)
            fill = {"fill_id": "lone-1", "symbol": "BENCH", "side": "buy", "quantity": 1.0,
                    "price": 100.0, "tick": 1, "source": "test"}
            await nc.jetstream().publish("fills.BENCH", json.dumps(fill).encode(),
                                         headers={"Nats-Msg-Id": "lone-1"}, timeout=10)
            await nc.close()
        asyncio.run(publish())
        wait_until(lambda: consumer.committed == 1, 10, "the lone fill committed",
                   seen=lambda: consumer.committed)
    finally:
        consumer.stop(15)   # ends the 30 s fetch now, not at its expiry (else the join times out)
        store.close()
    assert consumer._thread is not None and not consumer._thread.is_alive()


def test_a_window_of_fills_leaves_without_a_loop_turn_between_fills(broker) -> None:
    url, _ = broker
    window = [{"fill_id": f"w-{i}", "symbol": "BENCH", "side": "buy", "quantity": 1.0,
               "price": 100.0, "tick": i, "source": "test"} for i in range(200)]

    async def run() -> tuple[int, list]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await bot_bus.ensure_stream(js, 1)
            sent_at_first_turn: list[int] = []
            before = nc.stats["out_msgs"]
            # The loop's first turn after publish_fills starts: how many fills were handed over.
            asyncio.get_running_loop().call_soon(lambda: sent_at_first_turn.append(nc.stats["out_msgs"] - before))
            results = await bot_bus.publish_fills(js, window, timeout=20)
            return sent_at_first_turn[0], results
        finally:
            await nc.close()
    sent, results = asyncio.run(run())
    assert all(not isinstance(r, BaseException) for r in results), results[:3]
    assert sent == len(window), f"the loop ran after {sent} of {len(window)} publishes"
