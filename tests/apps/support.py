"""Test support for the application services: real processes, sockets and HTTP.

Nothing here sleeps a fixed time: a test waits on a datagram (``NotifyListener``), on a
process exit, or polls a condition against a deadline (``wait_for``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
BACKEND_DIR = ROOT / "services" / "backend"
BOT_DIR = ROOT / "services" / "trading-bot"
FDEXEC = Path(__file__).with_name("fdexec.py")

# In-process unit tests import the services' packages directly.
for _path in (BACKEND_DIR, BOT_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

T = TypeVar("T")
# The backend's write token (LEDGER_TOKEN), which the supervisor gives backend and bot.
LEDGER_TOKEN = "test-ledger-token-0123456789"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], T], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy; fail showing the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (OSError, ValueError, KeyError) as exc:  # e.g. server not up yet
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        # A poll period, not a synchronisation sleep: the deadline above decides.
        time.sleep(interval)


def http(method: str, url: str, body: Any = None, timeout: float = 5.0,
         token: str | None = LEDGER_TOKEN) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def get(url: str) -> Any:
    status, body = http("GET", url)
    assert status == 200, (url, status, body)
    return body


STDLIB_ONLY = """
import sys
before = set(sys.modules)
import {modules}
new = set(sys.modules) - before
print(sorted(m for m in new if m.split(".")[0] not in sys.stdlib_module_names
             and m.split(".")[0] not in {allowed!r}))
"""


def third_party_imports(modules: str, allowed: tuple[str, ...], cwd: Path) -> str:
    """What importing ``modules`` pulls in beyond the stdlib, in a fresh interpreter."""
    code = STDLIB_ONLY.format(modules=modules, allowed=allowed)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=30, check=True).stdout.strip()


class NotifyListener:
    """A bound sd_notify socket (abstract by default), drained by a reader thread as a
    supervisor would drain it; a test waits for a message with ``wait_for``."""

    def __init__(self, path: str | None = None, drain: bool = True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path is None:
            self.address = f"@unified-test-{uuid.uuid4().hex}"
            self.sock.bind(b"\0" + self.address[1:].encode())
        else:
            self.address = path
            self.sock.bind(path)
        self.messages: list[str] = []
        self._arrived = threading.Condition()
        self._reader: threading.Thread | None = None
        if drain:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:  # shutdown() in close()
                return
            with self._arrived:
                self.messages.append(data.decode())
                self._arrived.notify_all()

    def wait_for(self, field: str, timeout: float = 10.0) -> str:
        """Block until a datagram containing the line ``field`` has arrived."""
        def seen() -> str | None:
            return next((m for m in self.messages if field in m.splitlines()), None)

        with self._arrived:
            if not self._arrived.wait_for(seen, timeout):
                raise AssertionError(f"no {field!r} within {timeout}s; got {self.messages[-20:]!r}")
            return seen()  # type: ignore[return-value]

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv()
        except OSError:
            pass
        self.sock.close()
        if self._reader:
            self._reader.join(5)


class Proc:
    """A service process with its output in a log file, stopped by ``stop()``."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path,
                 pass_fds: tuple[int, ...] = ()):
        self.log = log
        self._out = open(log, "wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.popen = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=self._out,
                                      stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 10.0) -> int:
        return self.popen.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal and wait; SIGKILL if it outlives ``timeout``. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()
        return self.popen.returncode


class Procs:
    """Starts services for one test and stops every one of them at teardown."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.started: list[Proc] = []

    def start(self, name: str, argv: list[str], cwd: Path, env: dict[str, str],
              pass_fds: tuple[int, ...] = ()) -> Proc:
        proc = Proc(argv, cwd, env, self.tmp / f"{name}-{len(self.started)}.log", pass_fds)
        self.started.append(proc)
        return proc

    def backend(self, env: dict[str, str], pass_fds: tuple[int, ...] = (),
                argv_prefix: list[str] | None = None) -> Proc:
        argv = (argv_prefix or []) + [sys.executable, "-m", "backend"]
        return self.start("backend", argv, BACKEND_DIR, env, pass_fds)

    def bot(self, env: dict[str, str]) -> Proc:
        return self.start("bot", [sys.executable, "-m", "trading_bot"], BOT_DIR, env)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()
