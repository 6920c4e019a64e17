"""The backend's drain on SIGTERM (backend/drain.py): each open keep-alive connection gets
its next request answered, with `Connection: close`, instead of being cut while idle."""

from __future__ import annotations

import http.client
import signal
from urllib.parse import urlsplit

from .support import NotifyListener, Procs
from .test_backend import listener, start_backend  # noqa: F401  (listener is a fixture)


def keep_alive(url: str) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(url).port, timeout=10)
    conn.request("GET", "/health")
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 200 and answer.getheader("connection") != "close"
    return conn


def test_an_idle_keep_alive_connection_gets_its_next_answer_with_connection_close(
        procs: Procs, listener: NotifyListener, tmp_path) -> None:  # noqa: F811
    proc, url = start_backend(procs, listener, tmp_path, SHUTDOWN_DRAIN_SECONDS="60")
    conn = keep_alive(url)
    proc.popen.send_signal(signal.SIGTERM)
    listener.wait_for("STOPPING=1", timeout=10)   # sent as the drain begins
    conn.request("GET", "/health")                # plain uvicorn had closed this one already
    answer = conn.getresponse()
    assert answer.status == 200 and answer.read()
    assert answer.getheader("connection") == "close"
    assert proc.wait(30) == 0, proc.output()      # its last connection gone: no 60 s wait
    conn.close()


def test_a_connection_that_sends_nothing_is_closed_at_the_drain_deadline(
        procs: Procs, listener: NotifyListener, tmp_path) -> None:  # noqa: F811
    proc, url = start_backend(procs, listener, tmp_path, SHUTDOWN_DRAIN_SECONDS="1")
    conn = keep_alive(url)
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.output()
    assert conn.sock is not None
    conn.sock.settimeout(10)
    try:
        assert conn.sock.recv(1) == b""           # closed by the server, no answer pending
    except ConnectionResetError:
        pass
    conn.close()
