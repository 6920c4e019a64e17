"""The worst HTTP/1.1 a client can send the control API, sent for real over loopback.

Threat: request smuggling (a proxy in front and the supervisor disagree on where a request
ends), heads built to exhaust memory or a parser, numbers built to overflow. Each input must
get a 4xx or a closed connection, never a crash or a worker thread left hanging, and the API
must answer a plain request right after. The parser is h11 (api/http1.py), with the limits
this project adds on top of it.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import httpx
import pytest

from harness import SupervisorProcess, sleepers, wait_until

HOST = b"Host: 127.0.0.1\r\n"
SMUGGLED = b"GET /api/services/worker HTTP/1.1\r\n" + HOST + b"\r\n"


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    with SupervisorProcess(tmp_path_factory.mktemp("hostile-http"), sleepers("worker")) as sup:
        key = sup.api_key(30)
        wait_until(lambda: _health(sup, key) == 200, 30, "the API", seen=lambda: sup.output()[-1500:])
        yield sup


def _health(sup: SupervisorProcess, key: str) -> int | None:
    try:
        return httpx.get(sup.api_url + "/health", headers={"X-API-Key": key}, timeout=5).status_code
    except httpx.HTTPError:
        return None


def _busy(sup: SupervisorProcess) -> Any:
    r = httpx.get(sup.api_url + "/api/diagnostics", headers={"X-API-Key": sup.api_key()}, timeout=10)
    return r.json()["control_plane"]["connections"]["busy"]


def _exchange(sup: SupervisorProcess, data: bytes, timeout: float = 20.0) -> bytes:
    """Send it all (the server may stop reading and close first), then read to the end."""
    host, port = sup.api_address()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk


def _statuses(answer: bytes) -> list[int]:
    """Each response's status (a status line follows the last body without a break)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


HOSTILE = {
    "content-length-and-chunked": b"POST /api/reload HTTP/1.1\r\n" + HOST
    + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(SMUGGLED))
    + SMUGGLED,
    "chunked-then-content-length": b"POST /api/reload HTTP/1.1\r\n" + HOST
    + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "two-equal-content-lengths": b"POST /api/reload HTTP/1.1\r\n" + HOST
    + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + SMUGGLED,
    "two-content-lengths": b"POST /api/reload HTTP/1.1\r\n" + HOST
    + b"Content-Length: 2\r\nContent-Length: %d\r\n\r\n{}" % (2 + len(SMUGGLED)) + SMUGGLED,
    "header-line-of-1mb": b"GET /health HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
    "10000-headers": b"GET /health HTTP/1.1\r\n" + HOST
    + b"".join(b"X-%d: v\r\n" % i for i in range(10_000)) + b"\r\n",
    "bare-lf": b"GET /health HTTP/1.1\n" + HOST.replace(b"\r\n", b"\n") + b"\n",
    "absurd-content-length": b"POST /api/reload HTTP/1.1\r\n" + HOST
    + b"Content-Length: %d\r\n\r\n{}" % 10**30,
    "negative-content-length": b"POST /api/reload HTTP/1.1\r\n" + HOST + b"Content-Length: -2\r\n\r\n{}",
    "request-line-of-1mb": b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n" + HOST + b"\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "binary-garbage": bytes(range(256)) * 64,
    "header-injection-in-a-name": b"GET /health HTTP/1.1\r\n" + HOST + b"X\x00Y: v\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gets_a_4xx_or_a_close_and_the_api_goes_on(sup, name):
    answer = _exchange(sup, HOSTILE[name])
    codes = _statuses(answer)
    # at most one answer: nothing smuggled in a body was ever taken for a request
    assert codes == [] or (len(codes) == 1 and 400 <= codes[0] < 500 or codes == [505]), \
        (name, answer[:400])
    assert sup.proc.poll() is None, sup.output()[-3000:]
    assert _health(sup, sup.api_key()) == 200
    wait_until(lambda: _busy(sup) <= 1, 20, "the API's workers to be free again",  # 1: this one
               seen=lambda: _busy(sup))


def test_pipelined_requests_are_answered_in_order(sup):
    key = sup.api_key().encode()
    one = b"GET /health HTTP/1.1\r\n" + HOST + b"X-API-Key: " + key + b"\r\n\r\n"
    # A start of a running service: a POST with a body that spawns nothing. (A restart would
    # leave a new child of this module-wide supervisor, which the leak check flags.)
    post = (b"POST /api/services/worker/start HTTP/1.1\r\n" + HOST + b"X-API-Key: " + key
            + b"\r\nContent-Length: 2\r\n\r\n{}")
    last = b"GET /api/services/worker HTTP/1.1\r\n" + HOST + b"X-API-Key: " + key + b"\r\nConnection: close\r\n\r\n"
    answer = _exchange(sup, one + one + post + one + last)
    assert _statuses(answer) == [200, 200, 202, 200, 200], answer[:2000]
    assert b'"name": "worker"' in answer


def test_a_flood_of_pipelined_requests_is_bounded(sup):
    # 2,000 pipelined requests on one connection: answered one at a time, never all at once
    key = sup.api_key().encode()
    one = b"GET /health HTTP/1.1\r\n" + HOST + b"X-API-Key: " + key + b"\r\n\r\n"
    answer = _exchange(sup, one * 2000, timeout=60)
    codes = _statuses(answer)
    assert codes and set(codes) == {200}, codes[:20]
    assert _health(sup, sup.api_key()) == 200
