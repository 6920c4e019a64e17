"""A real nats-server with JetStream for one test, via services/nats/launch.py (the service's
own launcher, so the flags are the ones services.yaml gives it)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import PY, ROOT, free_port, stop_process, wait_until


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """(client URL, monitoring port) of a broker stored under tmp_path/nats."""
    port, monitor = free_port(), free_port()
    proc = subprocess.Popen(
        [PY, "launch.py", "-js", "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)],
        cwd=ROOT / "services" / "nats", env={**os.environ, "CHECKPOINT_DIR": str(tmp_path / "nats")},
        stdout=open(tmp_path / "nats.log", "wb"), stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true").status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(healthy, 30, "nats-server healthy")
        yield f"nats://127.0.0.1:{port}", monitor
    finally:
        stop_process(proc)
