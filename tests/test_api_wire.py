"""The control API's HTTP/1.1 on the wire, now framed by h11 (api/http1.py): HEAD, HTTP/1.0,
`Expect: 100-continue` with the real curl, and the event stream's chunked framing."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

import pytest

from harness import SupervisorProcess, sleepers


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    with SupervisorProcess(tmp_path_factory.mktemp("wire"), sleepers("worker")) as sup:
        sup.wait_api(30)
        yield sup


def _send(sup: SupervisorProcess, data: bytes, until: bytes | None = None) -> bytes:
    """Send, then read until `until` appears or the server closes."""
    host, port = sup.api_address()
    with socket.create_connection((host, port), timeout=20) as sock:
        sock.sendall(data)
        out = b""
        while until is None or until not in out:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_head_gets_headers_only_and_the_connection_stays(sup):
    key = sup.api_key().encode()
    head = b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    last = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + key + b"\r\nConnection: close\r\n\r\n"
    answer = _send(sup, head + last)
    first, rest = answer.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: GET" in first, answer[:500]
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:300]   # no body came between the two


def test_http_1_0_is_answered_and_closed(sup):
    answer = _send(sup, b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"status"' in answer, answer[:300]
    assert b"\r\nServer: unified-system Python/" in answer


def test_expect_100_continue_with_curl(sup):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    host, port = sup.api_address()
    out = subprocess.run(
        # curl sends the body without the 100 after --expect100-timeout; 30 s > --max-time,
        # so only a server that answers 100 before it has the body gets the 200
        [curl, "-sv", "--max-time", "20", "--expect100-timeout", "30", "-H", f"X-API-Key: {sup.api_key()}",
         "-H", "Expect: 100-continue", "-H", "Content-Type: application/json",
         "--data-binary", "{}", f"http://{host}:{port}/api/reload"],
        capture_output=True, text=True, timeout=60)
    assert "< HTTP/1.1 100 Continue" in out.stderr, out.stderr
    assert "< HTTP/1.1 200" in out.stderr, out.stderr


def test_the_event_stream_is_chunked_for_http_1_1(sup):
    request = (b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: "
               + sup.api_key().encode() + b"\r\n\r\n")
    answer = _send(sup, request, until=b"\n\n\r\n")   # the first frame's end, then its chunk's
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nTransfer-Encoding: chunked" in head, head
    size = re.match(rb"([0-9a-fA-F]+)\r\n", body)
    assert size is not None, body[:100]
    frame = body[size.end():size.end() + int(size.group(1), 16)]
    assert frame.startswith(b"event: snapshot\ndata: {") and frame.endswith(b"\n\n"), frame[:200]
