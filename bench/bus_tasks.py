"""The task queue and request/reply on the bus (issue 18, items 3 and 4), on a real
nats-server, the real backend and the real Node gateway.

    python bench/bus_tasks.py [--tasks 2000] [--requests 500]

1. Drain: ``--tasks`` echo tasks (a tenth high, the rest low) are published to TASKS with no
   worker running; then the backend starts, with a rate limit out of the way, and the time
   from its first task to its last gives tasks/s. Priority is checked on the way: every high
   task started before the first low one.
2. Request/reply: ``--requests`` sequential ``GET /api/trades/summary`` through the gateway,
   answered over NATS; then the same through a gateway without NATS_URL (HTTP proxy), for
   comparison. p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from _bus import Broker, get_json, http_ok, stop, wait

from _common import ROOT, free_port, pct

BACKEND = ROOT / "services" / "backend"
GATEWAY = ROOT / "services" / "node-server"
TOKEN = "bench-ledger-token"
get = get_json


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.broker: Broker | None = None
        self.nats_url = ""

    def spawn(self, argv: list[str], cwd: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def nats(self) -> None:
        self.broker = Broker(self.tmp / "js", self.tmp / "nats.log")
        self.nats_url = self.broker.url

    def backend(self, port: int, **env: str) -> subprocess.Popen[bytes]:
        proc = self.spawn([sys.executable, "-m", "backend", "--port", str(port)], BACKEND, {
            "DATA_DIR": str(self.tmp / "data"), "LEDGER_TOKEN": TOKEN, "NATS_URL": self.nats_url,
            "AI_ENABLED": "true", "LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT / "src"), **env},
            "backend")
        wait(lambda: http_ok(f"http://127.0.0.1:{port}/api/tasks/stats"), 60, "the backend on the bus")
        return proc

    def gateway(self, backend_port: int, bus: bool) -> str:
        port = free_port()
        env = {"PORT": str(port), "BACKEND_URL": f"http://127.0.0.1:{backend_port}",
               "RATE_LIMIT_PER_MINUTE": "1000000"}
        if bus:
            env["NATS_URL"] = self.nats_url
        self.spawn(["node", "src/index.js"], GATEWAY, env, f"gateway-{bus}")
        url = f"http://127.0.0.1:{port}"
        wait(lambda: get(f"{url}/api/trades/summary").get("count") is not None, 30, "the gateway")
        return url

    def stop(self) -> None:
        stop(([self.broker.proc] if self.broker else []) + self.procs)  # the broker last


async def publish(url: str, n: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    highs = n // 10
    futures = [await js.publish_async(f"tasks.{'low' if i < n - highs else 'high'}",
                                      json.dumps({"type": "echo", "payload": i}).encode())
               for i in range(n)]
    await asyncio.gather(*futures)
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        stack = Stack(Path(tmp_name))
        try:
            stack.nats()
            port = free_port()
            stack.backend(port).terminate()  # creates the streams and consumers
            stack.procs[-1].wait(10)
            asyncio.run(publish(stack.nats_url, args.tasks))
            started = time.monotonic()
            stack.backend(port, AI_RATE_LIMIT="1000000", AI_BURST="1000000")

            def drained() -> dict | None:
                stats = get(f"http://127.0.0.1:{port}/api/tasks/stats")
                return stats if stats["by_state"]["succeeded"] >= args.tasks else None
            wait(drained, 600, "the queue to drain")
            took = time.monotonic() - started
            tasks = get(f"http://127.0.0.1:{port}/api/tasks?limit={args.tasks}")["tasks"]
            first = {t["priority"]: min(x["started_seq"][0] for x in tasks if x["priority"] == t["priority"])
                     for t in tasks}
            last_high = max(t["started_seq"][0] for t in tasks if t["priority"] == "high")
            # The backend's own clock: from its first delivery to its last success.
            busy = max(t["finished_at"] for t in tasks) - min(t["created_at"] for t in tasks)
            print(f"drain: {args.tasks} tasks in {busy:.2f} s of worker time = {args.tasks / busy:.0f} "
                  f"tasks/s ({took:.2f} s with the backend's start); every high before any low: "
                  f"{last_high < first['low']}")

            for bus in (True, False):
                url = stack.gateway(port, bus)
                times = []
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    get(f"{url}/api/trades/summary")
                    times.append((time.perf_counter() - t0) * 1000)
                print(f"summary via {'NATS request/reply' if bus else 'HTTP proxy'}: "
                      f"p50 {statistics.median(times):.2f} ms, p99 {pct(times, 99):.2f} ms "
                      f"({args.requests} sequential requests)")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
