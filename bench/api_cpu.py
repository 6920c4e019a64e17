"""The supervisor's CPU per control API request: parsing, routing and framing, measured
on the supervisor process (utime + stime from /proc) over many requests on one kept-alive
connection, so the client's own cost is not counted.

    python bench/api_cpu.py [--children 10] [--requests 3000] [--path /health]

Used to compare the HTTP/1.1 layer (api/http1.py: h11 against the parser written by hand
before) in the same minute, by running this file in both checkouts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time

from _common import Bench, cpu_seconds, sleeper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=10)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--path", default="/health")
    args = parser.parse_args()
    bench = Bench({f"s{i:03d}": sleeper() for i in range(args.children)})
    try:
        bench.start()
        bench.wait_children(args.children)
        port = json.loads(bench.config.read_text())["supervisor"]["port"]
        deadline = time.monotonic() + 30
        while True:   # the API opens after the first spawns
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", args.path)
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the control API did not come up") from None
                time.sleep(0.05)
        for _ in range(100):   # warm-up
            conn.request("GET", args.path)
            conn.getresponse().read()
        assert bench.proc is not None
        pid = bench.proc.pid
        cpu, wall = cpu_seconds(pid), time.perf_counter()
        for _ in range(args.requests):
            conn.request("GET", args.path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
        cpu, wall = cpu_seconds(pid) - cpu, time.perf_counter() - wall
        conn.close()
        print(f"GET {args.path} x{args.requests} kept alive, {args.children} services: supervisor CPU "
              f"{cpu / args.requests * 1e6:.0f} us a request, {args.requests / wall:.0f} requests/s")
        bench.stop()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
