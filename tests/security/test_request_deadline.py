"""Slow and oversized requests to the control API (issue 14, item 2).

Threat: a client that sends its head a byte at a time (slowloris) held a thread for as long
as it kept sending (200 of them held 131 threads for 67 s); a head with no end was read
line by line for ever. Now the whole request must arrive within 10 s, and a thread is only
taken by a request that has arrived whole.
"""

from __future__ import annotations

import socket
import time

import httpx
import psutil
import pytest

from harness import SupervisorProcess, wait_until

DEADLINE = 10.0   # api/front.py Limits.deadline


@pytest.fixture
def sup(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          worker:
            command: ["{py}", "{children}/sleeper.py"]
    """) as sup:
        key = sup.api_key(30)
        wait_until(lambda: _ok(sup, key), 30, "the API", seen=lambda: sup.output()[-1500:])
        yield sup


def _ok(sup: SupervisorProcess, key: str) -> bool:
    try:
        return httpx.get(sup.api_url + "/health", headers={"X-API-Key": key}, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _connect(sup: SupervisorProcess) -> socket.socket:
    host, port = sup.api_address()
    return socket.create_connection((host, port), timeout=30)


def _read_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return out
        if not chunk:
            return out
        out += chunk


@pytest.mark.slow
def test_a_slowloris_head_is_cut_at_the_deadline_and_holds_no_thread(sup):
    pid = sup.proc.pid
    before = psutil.Process(pid).num_threads()
    slow = [_connect(sup) for _ in range(20)]
    started = time.monotonic()
    for sock in slow:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    answers: dict[int, bytes] = {}
    while len(answers) < len(slow) and time.monotonic() - started < 3 * DEADLINE:
        for i, sock in enumerate(slow):   # a header line a second, each one "progress"
            if i in answers:
                continue
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                sock.settimeout(0.05)
                got = sock.recv(65536)
                answers[i] = got or b"(closed)"
            except TimeoutError:
                pass
            except OSError:
                answers[i] = b"(reset)"
        assert psutil.Process(pid).num_threads() <= before + 2, "a slow head took a thread"
        time.sleep(1.0)  # the slowloris' pace, not a synchronisation
    took = time.monotonic() - started
    for sock in slow:
        sock.close()
    assert len(answers) == len(slow), f"still open after {took:.0f}s: {len(slow) - len(answers)}"
    assert took < DEADLINE + 5, took
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers.values()), set(answers.values())


def test_a_head_without_end_is_refused_431(sup):
    sock = _connect(sup)
    sock.sendall(b"GET /health HTTP/1.1\r\nX-Big: ")
    try:
        for _ in range(40):   # 80 KiB of one header line, never ended
            sock.sendall(b"a" * 2048)
    except OSError:
        pass   # refused while we were still sending
    got = _read_all(sock, 10)
    sock.close()
    assert got.startswith(b"HTTP/1.1 431") or got == b"", got[:200]
    assert _ok(sup, sup.api_key())


def test_pipelined_requests_on_a_kept_alive_connection_are_each_answered(sup):
    key = sup.api_key()
    sock = _connect(sup)
    one = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n".encode()
    last = f"GET /api/services HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n"
    sock.sendall(one + one + last.encode())
    got = _read_all(sock, 15)
    sock.close()
    assert got.count(b"HTTP/1.1 200 OK") == 3, got[:600]
    assert b'"name": "worker"' in got or b'"name":"worker"' in got


def test_a_body_sent_slowly_within_the_deadline_is_read_whole(sup):
    key = sup.api_key()
    sock = _connect(sup)
    body = b"{}"
    sock.sendall(f"POST /api/services/worker/restart HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
    time.sleep(0.5)  # the body arrives later than the head, as a slow client's would
    sock.sendall(body)
    got = _read_all(sock, 15)
    sock.close()
    assert got.startswith(b"HTTP/1.1 202"), got[:300]


def test_an_oversized_body_sent_slowly_is_refused_413_within_seconds(sup):
    key = sup.api_key()
    sock = _connect(sup)
    sock.sendall(f"POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
                 f"Content-Length: {1 << 20}\r\n\r\n".encode())
    started = time.monotonic()
    sock.settimeout(0.2)
    got = b""
    while time.monotonic() - started < 20 and not got:
        try:
            sock.sendall(b"x" * 16)   # a trickle, each piece "progress"
            got = sock.recv(65536)
        except TimeoutError:
            pass
        except OSError:
            break
    took = time.monotonic() - started
    sock.close()
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    assert took < 8, f"a trickled body held a thread for {took:.1f}s"


def test_two_content_lengths_are_refused_400(sup):
    key = sup.api_key()
    sock = _connect(sup)
    sock.sendall(f"POST /api/services/worker/restart HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
                 "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}".encode())
    got = _read_all(sock, 15)
    sock.close()
    assert got.startswith(b"HTTP/1.1 400"), got[:300]
