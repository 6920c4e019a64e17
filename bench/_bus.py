"""What the bus benchmarks share: a real nats-server with JetStream, waiting on a condition,
and stopping what they started (bench/bus_latency.py, bench/bus_stages.py, bench/bus_tasks.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from _common import ROOT, free_port

PY = sys.executable
T = TypeVar("T")


def wait(cond: Callable[[], T], timeout: float, what: str) -> T:
    """``cond()``'s first truthy value; a refused or failed request counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if value := cond():
                return value
        except (OSError, ValueError):   # urllib's errors are OSErrors; a half-written answer
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as answer:
        return bool(answer.status == 200)


def stop(procs: list[subprocess.Popen[bytes]], grace: float = 20.0) -> None:
    """SIGTERM each (last started first), ``grace`` seconds, then SIGKILL."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Broker:
    """nats-server through the service's own launcher (services/nats/launch.py), its store in
    ``store``, on free loopback ports; ready when its JetStream health check says so."""

    def __init__(self, store: Path, log: Path) -> None:
        self.port, self.monitor = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [PY, "launch.py", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor)],
            cwd=ROOT / "services" / "nats", env={**os.environ, "CHECKPOINT_DIR": str(store)},
            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        wait(lambda: http_ok(f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true"),
             30, "nats-server")

    def stream_messages(self, stream: str) -> int:
        """How many messages ``stream`` holds (the monitoring endpoint: no client needed)."""
        info = get_json(f"http://127.0.0.1:{self.monitor}/jsz?streams=true")
        for account in info.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail["name"] == stream:
                    return int(detail["state"]["messages"])
        return 0
