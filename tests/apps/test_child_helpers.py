"""unified_system.child: sd_notify datagrams, HTTP heartbeat, socket activation, checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from unified_system.child import checkpoint, notify
from unified_system.child.checkpoint import Checkpoint, canonical_json

from .support import FDEXEC, NotifyListener, Procs, third_party_imports


@pytest.fixture
def listener():
    lis = NotifyListener()
    yield lis
    lis.close()


def test_child_helpers_import_only_the_standard_library(tmp_path):
    assert third_party_imports("unified_system.child", ("unified_system",), tmp_path) == "[]"


# -- notify -----------------------------------------------------------------------------
def test_notify_sends_each_message_on_an_abstract_socket(listener, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    assert notify.ready() is True
    assert notify.heartbeat() is True
    assert notify.status("warming\nup") is True
    assert notify.stopping() and notify.reloading() and notify.trigger_watchdog()
    assert notify.extend_timeout(1.5)
    assert notify.notify(READY=1, STATUS="two fields")
    assert notify.notify_raw("CUSTOM=1\n")
    expected = ["READY=1\n", "WATCHDOG=1\n", "STATUS=warming up\n", "STOPPING=1\n",
                "RELOADING=1\n", "WATCHDOG=trigger\n", "EXTEND_TIMEOUT_USEC=1500000\n",
                "READY=1\nSTATUS=two fields\n", "CUSTOM=1\n"]
    listener.wait_for("CUSTOM=1", timeout=5)  # the last one; datagrams keep their order
    assert listener.messages == expected


def test_a_stalled_supervisor_never_blocks_the_child(monkeypatch):
    stalled = NotifyListener(drain=False)  # bound, but nobody reads: the queue fills up
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", stalled.address)
        started = time.monotonic()
        sent = [notify.heartbeat() for _ in range(200)]
        assert sent[0] is True and sent[-1] is False  # dropped once full, not blocked
        assert notify.ready() is False  # waits at most SEND_TIMEOUT, then gives up
        assert time.monotonic() - started < notify.SEND_TIMEOUT + 2.0
    finally:
        stalled.close()


def test_notify_on_a_filesystem_path_socket(monkeypatch):
    directory = tempfile.mkdtemp(prefix="nt")  # short: sun_path is 108 bytes at most
    path = os.path.join(directory, "notify.sock")
    lis = NotifyListener(path)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert notify.ready("up")
        assert lis.wait_for("READY=1", timeout=5) == "READY=1\nSTATUS=up\n"
    finally:
        lis.close()
        os.unlink(path)
        os.rmdir(directory)


def test_without_notify_socket_everything_is_a_noop(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("UNIFIED_HEARTBEAT_URL", raising=False)
    assert notify.ready() is False
    assert notify.heartbeat() is False
    assert notify.status("x") is False
    assert notify.trigger_watchdog() is False
    assert notify.watchdog_interval() is None
    assert notify.http_heartbeat() is False


def test_a_send_failure_returns_false_and_never_raises(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/dir/notify.sock")
    assert notify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + "x" * 200)  # too long for sun_path
    assert notify.heartbeat() is False


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert notify.watchdog_interval() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert notify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    monkeypatch.setenv("WATCHDOG_USEC", "garbage")
    assert notify.watchdog_interval() is None


def test_http_heartbeat_posts_with_the_token(monkeypatch):
    seen: list[tuple[str, str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append((self.command, self.path, self.headers.get("X-Unified-Token")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        monkeypatch.setenv("UNIFIED_HEARTBEAT_URL", f"http://127.0.0.1:{port}/api/services/x/heartbeat")
        monkeypatch.setenv("UNIFIED_TOKEN", "s3cret")
        assert notify.http_heartbeat() is True
        assert seen == [("POST", "/api/services/x/heartbeat", "s3cret")]
        server.shutdown()
        server.server_close()
        assert notify.http_heartbeat(timeout=0.5) is False  # nobody listening: False, no raise
    finally:
        server.shutdown()
        thread.join(5)


# -- socket activation --------------------------------------------------------------------
CHILD = """
import json, sys
from unified_system.child import notify
socks = notify.listen_sockets()
conn, _ = socks[0].accept()
conn.sendall(json.dumps({"n": len(socks), "names": notify.listen_fd_names(),
                         "fd": socks[0].fileno(), "family": int(socks[0].family)}).encode())
conn.close()
"""


def test_listen_sockets_adopts_an_inherited_fd(tmp_path):
    procs = Procs(tmp_path)
    server = socket.create_server(("127.0.0.1", 0))
    try:
        proc = procs.start("child", [sys.executable, str(FDEXEC), str(server.fileno()), "http",
                                     "--", sys.executable, "-c", CHILD],
                           cwd=tmp_path, env={}, pass_fds=(server.fileno(),))
        port = server.getsockname()[1]
        server.close()  # the child holds its own copy; connecting proves it listens on it
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.settimeout(10)
            info = json.loads(conn.recv(4096))
        assert info == {"n": 1, "names": ["http"], "fd": 3, "family": int(socket.AF_INET)}
        assert proc.wait(10) == 0, proc.output()
    finally:
        server.close()
        procs.stop_all()


def test_listen_fds_ignores_variables_meant_for_another_pid(monkeypatch):
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    assert notify.listen_fds() == 0
    assert notify.listen_sockets() == []
    assert notify.listen_fd_names() == []
    monkeypatch.setenv("LISTEN_PID", "not-a-pid")
    assert notify.listen_fds() == 0


# -- checkpoints ---------------------------------------------------------------------------
def test_save_load_and_prune_to_keep(tmp_path):
    cp = Checkpoint(tmp_path, keep=3)
    assert cp.load() is None and cp.generations() == []
    for i in range(1, 6):
        assert cp.save({"i": i, "name": "ünïcode"}) == i
    assert cp.generations() == [3, 4, 5]
    assert cp.load() == {"i": 5, "name": "ünïcode"}
    assert sorted(os.listdir(tmp_path)) == [f"checkpoint-{g:012d}.json" for g in (3, 4, 5)]


def test_file_follows_the_documented_format(tmp_path):
    cp = Checkpoint(tmp_path, keep=3)
    data = {"b": [1, 2.5, None], "a": "é"}
    cp.save(data)
    record = json.loads((tmp_path / "checkpoint-000000000001.json").read_text("utf-8"))
    assert set(record) == {"format", "generation", "saved_at", "sha256", "data"}
    assert record["format"] == 1 and record["generation"] == 1 and record["data"] == data
    assert record["saved_at"].endswith("Z") and len(record["saved_at"]) == 24
    canonical = '{"a":"é","b":[1,2.5,null]}'.encode()
    assert canonical_json(data) == canonical
    assert record["sha256"] == hashlib.sha256(canonical).hexdigest()


def _latest(cp: Checkpoint) -> Path:
    return cp.path_for(cp.generations()[-1])


def test_corrupt_latest_generation_falls_back_to_the_previous(tmp_path):
    cp = Checkpoint(tmp_path, keep=3)
    cp.save({"v": 1})
    cp.save({"v": 2})
    _latest(cp).write_bytes(b"\x00\xffnot json at all")
    assert cp.load() == {"v": 1}
    assert cp.save({"v": 3}) == 3  # never reuses the corrupt generation's number
    assert cp.load() == {"v": 3}


def test_truncated_latest_generation_falls_back(tmp_path):
    cp = Checkpoint(tmp_path, keep=3)
    cp.save({"v": 1, "pad": "x" * 100})
    cp.save({"v": 2, "pad": "x" * 100})
    body = _latest(cp).read_bytes()
    _latest(cp).write_bytes(body[: len(body) // 2])
    assert cp.load()["v"] == 1


def test_hash_mismatch_falls_back(tmp_path):
    cp = Checkpoint(tmp_path, keep=3)
    cp.save({"cash": 100})
    cp.save({"cash": 200})
    record = json.loads(_latest(cp).read_text())
    record["data"]["cash"] = 1_000_000  # valid JSON, tampered data
    _latest(cp).write_text(json.dumps(record))
    assert cp.load() == {"cash": 100}


def test_all_generations_bad_loads_none_and_leftover_tmp_is_ignored(tmp_path):
    cp = Checkpoint(tmp_path, keep=3)
    cp.save({"v": 1})
    _latest(cp).write_text("{")
    (tmp_path / ".checkpoint-000000000002.tmp").write_text('{"half":')  # a crashed save
    assert cp.load() is None
    assert cp.generations() == [1]


def test_module_functions_use_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CHECKPOINT_DIR", str(tmp_path / "cp"))
    monkeypatch.setenv("CHECKPOINT_KEEP", "2")
    for i in range(4):
        checkpoint.save({"i": i})
    assert checkpoint.load() == {"i": 3}
    assert Checkpoint().generations() == [3, 4]
    monkeypatch.delenv("CHECKPOINT_DIR")
    assert checkpoint.load() is None
    with pytest.raises(RuntimeError):
        Checkpoint()
