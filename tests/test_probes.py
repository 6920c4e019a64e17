"""The prober against real sockets and processes: every kind, every way to fail, timeouts."""

import http.server
import socket
import sys
import threading
import time

import pytest

from harness import QuietHandler, probe_runner, refused_port, serving
from unified_system.config.schema import Probe


@pytest.fixture
def runner():
    with probe_runner() as pair:
        yield pair


@pytest.fixture
def http_server():
    class Handler(QuietHandler):
        def do_GET(self):
            code = int(self.path.rsplit("/", 1)[-1]) if self.path[-3:].isdigit() else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as port:
        yield port


def attempt(runner, probe, timeout=10.0):
    prober, results = runner
    prober.submit(1, "readiness", probe, ".", {})
    return results.get(timeout=timeout)


@pytest.mark.parametrize("path,status,ok", [
    ("/health", None, True), ("/x/302", None, True), ("/x/500", None, False),
    ("/x/404", 404, True), ("/health", 204, False),
])
def test_http(runner, http_server, path, status, ok):
    probe = Probe.model_validate({"http": {"url": f"http://127.0.0.1:{http_server}{path}",
                                           **({"status": status} if status else {})}})
    result = attempt(runner, probe)
    assert result.ok is ok, result.detail


def test_http_to_a_hung_endpoint_is_cut_off_at_its_timeout(runner):
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen()   # accepts into the backlog, never answers
    try:
        probe = Probe.model_validate({"http": {"url": f"http://127.0.0.1:{hung.getsockname()[1]}/"},
                                     "timeout": "300ms"})
        started = time.monotonic()
        result = attempt(runner, probe)
        assert not result.ok and "timed out after 0.3s" in result.detail
        assert time.monotonic() - started < 2.0
    finally:
        hung.close()


def test_tcp_refused_and_accepted(runner):
    with refused_port() as port:
        refused = attempt(runner, Probe.model_validate({"tcp": {"port": port}}))
    assert not refused.ok and "refused" in refused.detail.lower()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ok = attempt(runner, Probe.model_validate({"tcp": {"port": listener.getsockname()[1]}}))
        assert ok.ok


@pytest.mark.parametrize("code,ok", [(0, True), (3, False)])
def test_exec(runner, code, ok):
    probe = Probe.model_validate({"exec": {"command": [sys.executable, "-c", f"raise SystemExit({code})"]},
                                  "timeout": "10s"})
    assert attempt(runner, probe).ok is ok


def test_exec_that_hangs_is_killed_at_its_timeout(runner):
    probe = Probe.model_validate({"exec": {"command": [sys.executable, "-c", "import time; time.sleep(60)"]},
                                  "timeout": "500ms"})
    result = attempt(runner, probe)
    assert not result.ok and "timed out" in result.detail


def test_https_probe_skips_certificate_checks_like_kubernetes(runner, tmp_path):
    import ssl
    import subprocess
    if subprocess.run(["openssl", "version"], capture_output=True).returncode != 0:
        pytest.skip("openssl not available to make a self-signed certificate")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        probe = Probe.model_validate({"http": {"url": f"https://127.0.0.1:{server.server_address[1]}/"},
                                      "timeout": "5s"})
        result = attempt(runner, probe)
        assert result.ok, result.detail
    finally:
        server.shutdown()
        server.server_close()
