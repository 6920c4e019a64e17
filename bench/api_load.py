"""Crash-to-restart latency while a local client sends ~1,000 API requests per second.

    python bench/api_load.py [--kills 30] [--rate 1000]
"""

import argparse
import statistics
import threading
import time

import httpx
from crash_restart import crash_latencies

from _common import Bench, sleeper


class Client(threading.Thread):
    """Paced GETs of /api/services, bounded in count and time."""

    def __init__(self, url: str, rate: float, seconds: float, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.rate, self.seconds = url, rate, seconds
        self.headers = {"X-API-Key": key}   # reads need the key (SPEC §6)
        self.sent = self.errors = 0
        self.halt = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        limit = int(self.rate * self.seconds)
        with httpx.Client(timeout=5, headers=self.headers) as client:
            while not self.halt.is_set() and self.sent < limit and time.monotonic() - start < self.seconds:
                try:
                    client.get(self.url)
                except httpx.HTTPError:
                    self.errors += 1
                self.sent += 1
                ahead = start + self.sent / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    bench = Bench({"victim": sleeper(restart={"backoff": {"initial": 0}, "max_restarts": 100000})})
    try:
        bench.start()
        bench.wait_children(1)
        import json
        port = json.loads(bench.config.read_text())["supervisor"]["port"]
        url = f"http://127.0.0.1:{port}/api/services"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        idle = crash_latencies(bench, args.kills)
        key = (bench.state / "api_key").read_text().strip()
        client = Client(url, args.rate, seconds=10.0, key=key)
        client.start()
        t0 = time.monotonic()
        loaded = crash_latencies(bench, args.kills)
        client.halt.set()
        client.join()
        achieved = client.sent / max(0.001, time.monotonic() - t0)
        mi, ml = statistics.median(idle), statistics.median(loaded)
        print(f"crash-to-restart idle: median {mi * 1000:.1f} ms; under ~{achieved:.0f} API req/s "
              f"({client.errors} errors): median {ml * 1000:.1f} ms, p99 "
              f"{sorted(loaded)[int(0.99 * (len(loaded) - 1))] * 1000:.1f} ms; ratio {ml / mi:.2f}x")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
