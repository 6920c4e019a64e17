"""GET /metrics latency with many services (children `sleep infinity`).

    python bench/metrics_latency.py [--children 100] [--requests 500] [--path /metrics]

Requests go one after another over one keep-alive connection, as a scraper's would.
Target: p99 <= 20 ms with 100 services.
"""

import argparse
import time

import httpx

from _common import Bench, pct, sleeper, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--path", default="/metrics")
    args = parser.parse_args()
    bench = Bench({f"s{i:03d}": sleeper() for i in range(args.children)})
    try:
        bench.start()
        bench.wait_children(args.children)
        port = __import__("json").loads(bench.config.read_text())["supervisor"]["port"]
        url = f"http://127.0.0.1:{port}{args.path}"
        with httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:   # the API comes up with the supervisor; wait for it and warm up
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the control API did not come up")
                time.sleep(0.05)
            for _ in range(20):
                client.get(url)
            times, size = [], 0
            for _ in range(args.requests):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - t0)
                size = len(response.content)
        print(f"GET {args.path} with {args.children} services, {size} bytes: {summary(times)}; "
              f"p50 {pct(times, 50) * 1000:.2f} ms, p99 {pct(times, 99) * 1000:.2f} ms")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
