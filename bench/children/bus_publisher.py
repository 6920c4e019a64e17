"""The bot's publishing half at a fixed rate: fills go into an outbox that the bot's own
BusDeliverer (services/trading-bot/trading_bot/bus_delivery.py) drains to JetStream.

``python bus_publisher.py NATS_URL RATE SECONDS TAG``: makes RATE fills a second for SECONDS,
each stamped with the wall time it entered the outbox (``filled_at``, what the backend's
ledger row is compared to), waits until every one is acked, then prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "trading-bot"))

from trading_bot.bus_delivery import BusDeliverer  # noqa: E402

STEP = 0.002   # seconds between pacing ticks: each adds every fill that is due


def main(url: str, rate: float, seconds: float, tag: str) -> int:
    state: dict = {"outbox": []}
    lock = threading.Lock()
    deliverer = BusDeliverer(url, lambda: state, lock)
    deliverer.start()
    total = int(rate * seconds)
    made = 0
    start = time.monotonic()
    while made < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        if due > made:
            now = repr(time.time())
            with lock:
                state["outbox"].extend(
                    {"fill_id": f"{tag}-{i}", "symbol": "BENCH", "side": "buy", "quantity": 1.0,
                     "price": 100.0, "tick": i, "source": "bench", "filled_at": now}
                    for i in range(made, due))
            made = due
            deliverer.wake.set()
        time.sleep(STEP)
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 120
    while not deliverer.drain_once() and time.monotonic() < deadline:
        time.sleep(0.01)
    drained = time.monotonic() - start
    deliverer.stop()
    print(json.dumps({"made": made, "acked": deliverer.delivered, "make_seconds": elapsed,
                      "drain_seconds": drained}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
