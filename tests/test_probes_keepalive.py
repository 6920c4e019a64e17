"""HTTP probes keep their connection alive between attempts, against the servers users bring
(uvicorn, Node, Python's http.server), the keep-alive race, hung and restarted servers, and
the worst answers a server can give."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness import QuietHandler, free_port, probe_runner, serving, wait_until
from unified_system.config.schema import Probe

CHILDREN = Path(__file__).resolve().parent / "children"


@pytest.fixture
def runner():
    with probe_runner() as pair:
        yield pair


def http_probe(port: int, path: str = "/health", timeout: str = "2s", **http: object) -> Probe:
    return Probe.model_validate({"http": {"url": f"http://127.0.0.1:{port}{path}", **http},
                                 "timeout": timeout})


def attempt(runner, probe: Probe, inc: int = 1, role: str = "readiness"):
    prober, results = runner
    prober.submit(inc, role, probe, ".", {})
    return results.get(timeout=30)


def conns(port: int) -> int:
    """The server's own count of connections, less the ones the questions opened: call once
    before the probes (`before`), then `opened(port, before)`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/conns", timeout=10) as answer:
        return int(answer.read())


def opened(port: int, before: int) -> int:
    return conns(port) - before - 1   # the `before` question's own connection


def client_sockets(port: int) -> list[str]:
    """This host's client-side TCP sockets to `port` that are open (ESTABLISHED) or that the
    server closed and the client has not yet (CLOSE_WAIT), from /proc/net/tcp."""
    found = []
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == port and fields[3] in ("01", "08"):
                found.append(fields[3])
    return found


@contextmanager
def child(argv: list[str], port: int) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(up, timeout=60, what=f"{argv[1]} listening on {port}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def uvicorn_server(port: int, keep_alive: float = 5.0):
    return child([sys.executable, str(CHILDREN / "asgi_health.py"), str(port), str(keep_alive)], port)


def node_server(port: int, keep_alive_ms: int):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    return child([node, str(CHILDREN / "node_health.js"), str(port), str(keep_alive_ms)], port)


# ---------------------------------------------------------------------------- real servers

def test_uvicorn_one_connection_carries_every_attempt(runner):
    port = free_port()
    with uvicorn_server(port):
        before = conns(port)
        results = [attempt(runner, http_probe(port)) for _ in range(20)]
        assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
        assert opened(port, before) == 1
        # readiness and liveness of one incarnation each keep their own
        before = conns(port)
        assert all(attempt(runner, http_probe(port), role="liveness").ok for _ in range(3))
        assert opened(port, before) == 1


def test_keep_alive_false_opens_a_fresh_connection_each_time(runner):
    port = free_port()
    with uvicorn_server(port):
        before = conns(port)
        probe = http_probe(port, keep_alive=False)
        assert all(attempt(runner, probe).ok for _ in range(5))
        assert opened(port, before) == 5


def counting_handler(version: str, accepted: list[int]) -> type[QuietHandler]:
    """http.server's handler answering 200 "ok", counting the connections it accepts."""

    class Handler(QuietHandler):
        protocol_version = version

        def setup(self) -> None:
            accepted.append(1)
            super().setup()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    return Handler


def test_http10_server_is_probed_fresh_each_time_without_failing(runner):
    accepted: list[int] = []
    # HTTP/1.0, http.server's default: it closes after each answer
    with serving(counting_handler("HTTP/1.0", accepted)) as port:
        results = [attempt(runner, http_probe(port)) for _ in range(6)]
        assert all(r.ok for r in results), [r.detail for r in results]
        assert len(accepted) == 6


def test_node_keep_alive_race_never_fails_a_probe(runner):
    """Node closes an idle connection after keepAliveTimeout (300 ms here). Attempts spaced
    around it meet connections closed just before, just as, and just after they send."""
    port = free_port()
    prober, results = runner
    with node_server(port, 300):
        before = conns(port)
        probe = http_probe(port)
        outcomes = []
        for i in range(40):
            prober.submit(1, "readiness", probe, ".", {})
            outcomes.append(results.get(timeout=30))
            time.sleep(0.27 + (i % 9) * 0.01)   # pacing the attempts, not synchronising: 270-350 ms
        failed = [r.detail for r in outcomes if not r.ok]
        assert not failed
        count = opened(port, before)
        assert 1 <= count <= 40, count


def test_node_reuses_within_its_keep_alive_timeout(runner):
    port = free_port()
    with node_server(port, 5000):
        before = conns(port)
        assert all(attempt(runner, http_probe(port)).ok for _ in range(15))
        assert opened(port, before) == 1


def test_restarted_server_is_probed_fresh_and_the_old_connection_closed(runner):
    port = free_port()
    with uvicorn_server(port):
        assert attempt(runner, http_probe(port)).ok
        assert client_sockets(port) == ["01"]   # kept, idle
    # The server is gone: its close reached the idle connection, which the prober closed.
    wait_until(lambda: not client_sockets(port), timeout=20, what="no socket left to the old server",
               seen=lambda: client_sockets(port))
    with uvicorn_server(port):
        before = conns(port)
        assert attempt(runner, http_probe(port)).ok
        assert opened(port, before) == 1


def test_close_leaves_no_connection(runner):
    port = free_port()
    with uvicorn_server(port):
        with probe_runner() as (prober, results):
            prober.submit(1, "readiness", http_probe(port), ".", {})
            assert results.get(timeout=30).ok
            prober.submit(2, "liveness", http_probe(port), ".", {})
            assert results.get(timeout=30).ok
            assert len(client_sockets(port)) == 2
        wait_until(lambda: not client_sockets(port), timeout=10, what="closed on close()",
                   seen=lambda: client_sockets(port))


# ---------------------------------------------------------------------------- scripted servers

class Scripted:
    """A loopback server whose every connection runs `script(conn, n)`, n counting requests
    read on that connection. Counts accepts."""

    def __init__(self, script: Callable[[socket.socket, int], None]) -> None:
        self.script = script
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        n = 0
        buf = b""
        try:
            while not self.stop.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    n += 1
                    self.script(conn, n)
        except OSError:
            pass

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass


@pytest.fixture
def scripted():
    made: list[Scripted] = []

    def make(script: Callable[[socket.socket, int], None]) -> Scripted:
        made.append(Scripted(script))
        return made[-1]

    yield make
    for server in made:
        server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_race_closed_before_the_answer_is_retried_fresh(runner, scripted):
    """The server answers the first request, then closes as the second arrives: what a
    server's idle timeout does when it fires as we send. FIN and RST both."""
    def script(conn: socket.socket, n: int) -> None:
        if n == 1:
            conn.sendall(OK)
        elif server.conns.index(conn) % 2:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")   # RST
            conn.close()
        else:
            conn.shutdown(socket.SHUT_RDWR)   # FIN
            conn.close()

    server = scripted(script)
    probe = http_probe(server.port)
    outcomes = [attempt(runner, probe) for _ in range(8)]
    assert all(r.ok for r in outcomes), [r.detail for r in outcomes]
    # each connection carries one answer and is closed by the second request: retried fresh
    assert server.accepted == 8


def test_server_that_never_answers_a_kept_connection_fails(runner, scripted):
    """A server closing every connection without answering is not retried forever: the
    retry is once, on a fresh connection, and that one fails."""
    server = scripted(lambda conn, n: conn.sendall(OK) if conn is server.conns[0] and n == 1
                      else conn.close())
    probe = http_probe(server.port)
    assert attempt(runner, probe).ok
    failed = attempt(runner, probe)
    assert not failed.ok and "not an HTTP answer" in failed.detail
    assert server.accepted == 2


def test_hung_server_fails_at_its_timeout_and_the_next_attempt_is_fresh(runner, scripted):
    hang = threading.Event()

    def script(conn: socket.socket, n: int) -> None:
        if not hang.is_set():
            conn.sendall(OK)   # keep-alive answers until told to hang

    server = scripted(script)
    probe = http_probe(server.port, timeout="400ms")
    assert attempt(runner, probe).ok and attempt(runner, probe).ok
    assert server.accepted == 1
    hang.set()
    started = time.monotonic()
    hung = attempt(runner, probe)
    assert not hung.ok and "timed out after 0.4s" in hung.detail
    assert time.monotonic() - started < 5
    hang.clear()
    assert attempt(runner, probe).ok
    assert server.accepted == 2   # the timed-out connection was not reused


def test_a_connection_is_not_reused_past_its_age(runner, scripted, monkeypatch):
    from unified_system.probes import kept

    monkeypatch.setattr(kept, "MAX_AGE", 0.3)
    server = scripted(lambda conn, n: conn.sendall(OK))
    probe = http_probe(server.port)
    assert attempt(runner, probe).ok and attempt(runner, probe).ok
    first = server.accepted
    wait_until(lambda: client_sockets(server.port) == [], timeout=10, what="swept past its age",
               seen=lambda: client_sockets(server.port))
    assert attempt(runner, probe).ok
    assert server.accepted == first + 1


HOSTILE = {
    "huge body": (b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 300_000, True),
    "lying length": (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok", True),
    "endless chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + b"1000\r\n" + b"y" * 4096 + b"\r\n", True),
    "garbage": (b"\x00\xff garbage \r\n\r\n" * 10, False),
    "no status": (b"HTTP/1.1 \r\nContent-Length: 0\r\n\r\n", False),
    "two answers": (OK + OK, True),
    "length and chunked": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked"
                           b"\r\n\r\n2\r\nok\r\n0\r\n\r\n", True),
    "http/1.0": (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
    "connection close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True),
    "server error": (b"HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nno", False),
    "huge head": (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"z" * 20_000 + b"\r\n\r\n", True),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_worst_answers_are_judged_by_status_and_never_reused(runner, scripted, name):
    answer, ok = HOSTILE[name]
    endless = name == "endless chunked"

    def script(conn: socket.socket, n: int) -> None:
        try:
            conn.sendall(answer)
            while endless and not server.stop.is_set():   # bounded by the test's end
                conn.sendall(b"1000\r\n" + b"y" * 4096 + b"\r\n")
        except OSError:
            pass

    server = scripted(script)
    probe = http_probe(server.port, timeout="1s")
    for round_ in range(1, 4):
        started = time.monotonic()
        result = attempt(runner, probe)
        assert result.ok is ok, result.detail
        assert time.monotonic() - started < 5
        # the verdict went at once; the connection is closed by the timeout at the latest
        wait_until(lambda n=round_: server.accepted == n and not client_sockets(server.port),
                   timeout=10, what=f"{name}: connection {round_} closed, not kept",
                   seen=lambda: (server.accepted, client_sockets(server.port)))


def test_chunked_answer_is_kept(runner, scripted):
    server = scripted(lambda conn, n: conn.sendall(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
    probe = http_probe(server.port)
    assert all(attempt(runner, probe).ok for _ in range(5))
    assert server.accepted == 1


def test_answer_split_across_reads_is_kept(runner, scripted):
    def script(conn: socket.socket, n: int) -> None:
        conn.sendall(OK[:20])
        time.sleep(0.05)   # the server's own pacing: the body comes in a second segment
        conn.sendall(OK[20:])

    server = scripted(script)
    probe = http_probe(server.port)
    assert all(attempt(runner, probe).ok for _ in range(4))
    assert server.accepted == 1


def test_threaded_http11_server_from_the_standard_library_is_kept(runner):
    accepted: list[int] = []
    with serving(counting_handler("HTTP/1.1", accepted)) as port:
        assert all(attempt(runner, http_probe(port)).ok for _ in range(5))
        assert len(accepted) == 1


def test_forget_closes_the_incarnations_kept_connections(scripted):
    """The owner takes an incarnation's probes back when it stops: its kept connection goes
    then, even though the server lives on (a probe of another process's port)."""
    from unified_system.probes.plans import Plan

    server = scripted(lambda conn, n: conn.sendall(OK))
    probe = Probe.model_validate({"http": {"url": f"http://127.0.0.1:{server.port}/"},
                                  "period": "100ms"})
    with probe_runner() as (prober, results):
        prober.watch(Plan(7, "liveness", probe, 0.0))
        wait_until(lambda: results.qsize() >= 3, timeout=30, what="three results")
        assert client_sockets(server.port) == ["01"] and server.accepted == 1
        prober.forget(7)
        wait_until(lambda: not client_sockets(server.port), timeout=10, what="closed on forget",
                   seen=lambda: client_sockets(server.port))
