"""GET /metrics latency with many services (children `sleep infinity`).

    python bench/metrics_latency.py [--children 100] [--requests 500] [--path /metrics]
                                    [--idle 500]

Requests go one after another over one keep-alive connection, as a scraper's would.
Target: p99 <= 20 ms with 100 services.

--idle N holds N more connections open while it measures: half sent one request and wait
kept alive (a browser's pool), half sent nothing yet (a slow or idle client). The API must
still serve /metrics within its target (issue 14). They are opened after the warm-up and
the measurement ends well within the API's 10 s deadline for idle connections.
"""

import argparse
import socket
import time

import httpx

from _common import Bench, pct, sleeper, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--path", default="/metrics")
    parser.add_argument("--idle", type=int, default=0, help="idle connections held open meanwhile")
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
            idle = hold_idle(port, args.idle)
            times, size = [], 0
            for _ in range(args.requests):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - t0)
                size = len(response.content)
            still = sum(1 for sock in idle if _open(sock))
            for sock in idle:
                sock.close()
        print(f"GET {args.path} with {args.children} services, {size} bytes: {summary(times)}; "
              f"p50 {pct(times, 50) * 1000:.2f} ms, p99 {pct(times, 99) * 1000:.2f} ms"
              + (f"; {args.idle} idle connections held, {still} still open at the end" if idle else ""))
        bench.stop()
    finally:
        bench.close()


def hold_idle(port: int, count: int) -> list[socket.socket]:
    """`count` connections: the even ones after one answered request (kept alive), the odd
    ones before sending anything."""
    socks = []
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 2 == 0:
            sock.sendall(request)
            got = b""
            while b"\r\n\r\n" not in got:   # /health's answer is small: head and body at once
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("an idle connection was closed before the measurement")
                got += chunk
        socks.append(sock)
    return socks


def _open(sock: socket.socket) -> bool:
    """Not closed by the server: nothing to read (would block) rather than end-of-file."""
    sock.setblocking(False)
    try:
        return sock.recv(65536, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
