"""CPU of the control API's HTTP/1.1 layer alone, in process, no sockets: one small
request parsed and a small JSON answer framed, per iteration. Runs against the checkout
given by --src, with whichever api/http1.py it has (h11's `Incoming` with api/reply.py, or
the parser by hand with api/front.py's request_end that came before it).

    python bench/http1_parse.py [--src src] [--requests 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:1234\r\nAccept-Encoding: identity\r\n\r\n"
HEADERS = [("Content-Type", "application/json"), ("Content-Length", "20"), ("Cache-Control", "no-store")]


def small_answer(handler: Any) -> None:
    """What both layers' handlers answer to GET: 200, three headers, a 20-byte body."""
    handler.send_response(200)
    for k, v in HEADERS:
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(b"x" * 20)


def h11_layer(http1, reply, n: int) -> None:
    incoming = http1.Incoming()
    sent = []

    class Sock:
        def sendall(self, data: bytes) -> None:
            sent.append(data)

    class Handler(reply.RequestHandler):
        def setup(self) -> None:
            self.wfile = reply.Writer(self.request, self.wire)

        do_GET = small_answer

    sock = Sock()
    for _ in range(n):
        incoming.feed(REQUEST)
        Handler(sock, ("127.0.0.1", 1), None, incoming.pull(65536))
        incoming.pull(65536)   # what the front does when the connection comes back
        sent.clear()


def by_hand(http1, front, n: int) -> None:
    class Handler(http1.RequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            self.rfile, self.wfile = io.BytesIO(REQUEST), io.BytesIO()

        do_GET = small_answer

    for _ in range(n):
        front.request_end(REQUEST, 65536)
        Handler(None, ("127.0.0.1", 1), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default=str(Path(__file__).resolve().parent.parent / "src"))
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, args.src)
    from unified_system.api import front, http1

    kind = "h11" if hasattr(http1, "Incoming") else "by hand"
    times = []
    for _ in range(args.rounds):
        started = time.process_time()
        if kind == "h11":
            from unified_system.api import reply
            h11_layer(http1, reply, args.requests)
        else:
            by_hand(http1, front, args.requests)
        times.append((time.process_time() - started) / args.requests * 1e6)
    print(f"HTTP/1.1 layer ({kind}, {args.src}): median {statistics.median(times):.0f} us CPU a request "
          f"(min {min(times):.0f}), {args.rounds} rounds of {args.requests}")


if __name__ == "__main__":
    main()
