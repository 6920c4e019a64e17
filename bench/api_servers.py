"""The control API's server against well-kept ones: resident memory, import cost, and a flood.

    python bench/api_servers.py [--servers front,http.server,waitress,cheroot,uvicorn]
                                [--streams 300] [--slow 200] [--seconds 12] [--nofile 256]

Each server runs in its own process under `ulimit -n NOFILE`, serving the same two routes:
`/health` (a small JSON answer) and `/events` (an event stream: a comment every second, as
the API's keep-alive does). `front` is this project's (api/front.py, with its 32-stream cap);
`http.server` is the hand-written ThreadingHTTPServer it replaced; waitress and cheroot are
WSGI servers (an event stream holds one of their worker threads), sized as the API is (48
threads; waitress 128 connections; 10 s timeouts); uvicorn runs Starlette on asyncio
(`limit_concurrency=128`). Every server but `http.server` caps event streams at 32 (503).
Flood: STREAMS event streams plus SLOW clients that send a header line a second and never
finish, for SECONDS; meanwhile a fresh client asks /health every 0.5 s (2 s timeout).
Reported: RSS once serving, import time of the server's modules (median of 5 fresh
interpreters), threads and RSS at their peak in the flood, the share of /health probes
answered during the flood and their median latency, and the time to the first /health
answered after the flood ends. Needs `pip install waitress cheroot` for those two.
"""

from __future__ import annotations

import argparse
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from _common import ROOT, free_port, rss_bytes

SERVER = r'''
import json, socket, sys, threading, time
kind, port = sys.argv[1], int(sys.argv[2])
HEALTH = json.dumps({"status": "healthy", "services": {"a": "running"}}).encode()

wsgi_streams = [0]
wsgi_lock = threading.Lock()

def wsgi(environ, start_response):
    if environ["PATH_INFO"] == "/events":
        with wsgi_lock:   # the same 32-stream cap as the API's
            full = wsgi_streams[0] >= 32
            if not full:
                wsgi_streams[0] += 1
        if full:
            start_response("503 Service Unavailable", [("Retry-After", "2"), ("Content-Length", "0")])
            return [b""]
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        def stream():
            try:
                yield b": hello\n\n"
                while True:
                    time.sleep(1.0)
                    yield b": keep-alive\n\n"
            finally:
                with wsgi_lock:
                    wsgi_streams[0] -= 1
        return stream()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(HEALTH)))])
    return [HEALTH]

if kind in ("front", "http.server"):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    streams = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30.0
        def log_message(self, *a): pass
        def do_GET(self):
            if self.path == "/events":
                with lock:
                    full = kind == "front" and streams[0] >= 32
                    if not full:
                        streams[0] += 1
                if full:
                    self.send_response(503); self.send_header("Retry-After", "2")
                    self.send_header("Content-Length", "0"); self.end_headers(); return
                self.close_connection = True
                try:
                    self.send_response(200); self.send_header("Content-Type", "text/event-stream")
                    self.end_headers(); self.wfile.write(b": hello\n\n")
                    while True:
                        time.sleep(1.0)
                        self.wfile.write(b": keep-alive\n\n")
                except OSError:
                    pass
                finally:
                    with lock:
                        streams[0] -= 1
                return
            self.send_response(200); self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(HEALTH))); self.end_headers()
            self.wfile.write(HEALTH)

    if kind == "http.server":
        ThreadingHTTPServer.daemon_threads = True
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        print("ready", flush=True)
        server.serve_forever()
    else:
        import resource
        from unified_system.api.front import Front, Reader, Writer, limits_for, REQUEST_QUEUE_SIZE

        class FrontHandler(Handler):
            def __init__(self, request, address, server, head=b""):
                self.head = head
                super().__init__(request, address, server)
            def setup(self):
                self.connection = self.request
                self.connection.settimeout(self.timeout)
                self.rfile = Reader(self.connection, self.head)
                self.wfile = Writer(self.connection)
            def handle(self):
                self.close_connection = True
                self.handle_one_request()

        def answer(sock, address, head):
            h = FrontHandler(sock, address, None, head)
            return not h.close_connection, bytes(h.rfile.pending)

        listener = socket.create_server(("127.0.0.1", port), backlog=REQUEST_QUEUE_SIZE)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        class Log:
            def warning(self, *a, **k): pass
            def exception(self, *a, **k): pass
        front = Front(listener, answer, limits_for(nofile, 32), 64 * 1024, Log())
        print("ready", flush=True)
        front.run()
elif kind == "waitress":
    import waitress
    print("ready", flush=True)
    # sized as the API is: 48 threads, 128 connections, 10 s for a request or an idle one
    waitress.serve(wsgi, host="127.0.0.1", port=port, _quiet=True, threads=48,
                   connection_limit=128, channel_timeout=10)
elif kind == "cheroot":
    from cheroot import wsgi as cw
    server = cw.Server(("127.0.0.1", port), wsgi, numthreads=48, timeout=10)
    print("ready", flush=True)
    server.start()
elif kind == "uvicorn":
    import asyncio, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def health(request):
        return Response(HEALTH, media_type="application/json")

    streams = [0]

    async def events(request):
        if streams[0] >= 32:
            return Response(b"", status_code=503, headers={"Retry-After": "2"})
        streams[0] += 1
        async def stream():
            try:
                yield b": hello\n\n"
                while True:
                    await asyncio.sleep(1.0)
                    yield b": keep-alive\n\n"
            finally:
                streams[0] -= 1
        return StreamingResponse(stream(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/health", health), Route("/events", events)])
    print("ready", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", limit_concurrency=128,
                timeout_keep_alive=10)
'''

IMPORTS = {"front": "import http.server, unified_system.api.front",
           "http.server": "import http.server",
           "waitress": "import waitress",
           "cheroot": "import cheroot.wsgi",
           "uvicorn": "import uvicorn, starlette.applications, starlette.responses, starlette.routing"}


def import_cost(kind: str) -> float:
    code = f"import time; t = time.perf_counter(); {IMPORTS[kind]}; print(time.perf_counter() - t)"
    env = {"PYTHONPATH": str(ROOT / "src")}
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 env=env, check=True).stdout) for _ in range(5)]
    return statistics.median(runs)


def threads(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def health(url: str) -> float | None:
    t0 = time.perf_counter()
    try:
        if httpx.get(url, timeout=2.0).status_code == 200:
            return time.perf_counter() - t0
    except httpx.HTTPError:
        pass
    return None


def flood(port: int, streams: int, slow: int) -> tuple[selectors.DefaultSelector, list[socket.socket]]:
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(streams + slow):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        first = (b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" if i < streams
                 else b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sel.register(sock, selectors.EVENT_WRITE | selectors.EVENT_READ, [first, i >= streams])
        socks.append(sock)
    return sel, socks


def pump(sel: selectors.DefaultSelector, seconds: float, tick: list[float]) -> None:
    """Send first lines, read and discard, and a header line a second from the slow ones."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, events in sel.select(0.05):
            sock, state = key.fileobj, key.data
            try:
                if events & selectors.EVENT_WRITE and state[0]:
                    state[0] = state[0][sock.send(state[0]):]
                    if not state[0]:
                        sel.modify(sock, selectors.EVENT_READ, state)
                if events & selectors.EVENT_READ and not sock.recv(65536):
                    sel.unregister(sock)
            except OSError:
                sel.unregister(sock)
        if time.monotonic() >= tick[0]:
            tick[0] += 1.0
            for key in list(sel.get_map().values()):
                if key.data[1] and not key.data[0]:
                    try:
                        key.fileobj.send(b"X-Slow: 1\r\n")
                    except OSError:
                        pass


def run(kind: str, args: argparse.Namespace) -> dict:
    port = free_port()
    nofile = args.nofile
    proc = subprocess.Popen([sys.executable, "-c", SERVER, kind, str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))
    out: dict = {"server": kind}
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        url = f"http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + 20
        while health(url) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not answer")
        for _ in range(20):
            health(url)
        out["rss_mb"] = rss_bytes(proc.pid) / 1e6
        out["import_ms"] = import_cost(kind) * 1000
        sel, socks = flood(port, args.streams, args.slow)
        peak_threads, peak_rss, answered, latencies = 0, 0, 0, []
        tick = [time.monotonic() + 1.0]
        end = time.monotonic() + args.seconds
        probes = 0
        while time.monotonic() < end and proc.poll() is None:
            pump(sel, 0.5, tick)
            peak_threads = max(peak_threads, threads(proc.pid))
            peak_rss = max(peak_rss, rss_bytes(proc.pid))
            probes += 1
            took = health(url)
            if took is not None:
                answered += 1
                latencies.append(took)
        for sock in socks:
            sock.close()
        sel.close()
        ended = time.monotonic()
        recovered = None
        while proc.poll() is None and time.monotonic() - ended < 30:
            if health(url) is not None:
                recovered = time.monotonic() - ended
                break
        out.update(threads=peak_threads, flood_rss_mb=peak_rss / 1e6,
                   answered=f"{answered}/{probes}",
                   health_ms=statistics.median(latencies) * 1000 if latencies else None,
                   recovered_s=recovered, alive=proc.poll() is None)
    finally:
        proc.kill()
        proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", default="front,http.server,waitress,cheroot,uvicorn")
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--nofile", type=int, default=256)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {Path('/proc/loadavg').read_text().split()[:3]}")
    print("| server | RSS serving | import | flood: peak threads | flood: peak RSS | /health answered "
          "during flood | its median | first /health after | alive |")
    for kind in args.servers.split(","):
        try:
            r = run(kind, args)
        except Exception as exc:   # a server missing or failing is a result too
            print(f"| {kind} | failed: {exc} |")
            continue
        med = f"{r['health_ms']:.1f} ms" if r["health_ms"] is not None else "-"
        rec = f"{r['recovered_s']:.2f} s" if r["recovered_s"] is not None else "never"
        print(f"| {kind} | {r['rss_mb']:.1f} MB | {r['import_ms']:.1f} ms | {r['threads']} | "
              f"{r['flood_rss_mb']:.1f} MB | {r['answered']} | {med} | {rec} | {r['alive']} |")


if __name__ == "__main__":
    main()
