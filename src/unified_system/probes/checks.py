"""One probe attempt of each kind. Each is bounded by the probe's timeout, so a hung
endpoint costs a worker at most `timeout` seconds and never blocks the owner."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any, Mapping

from unified_system.proc.seam import ProcessSeam, SpawnError


class ProbeFailed(Exception):
    pass


class HttpChecker:
    """Shares one connection pool between all http probes (httpx is imported only if used)."""

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self, url: str, status: int | None, timeout: float) -> str:
        import httpx

        with self._lock:
            if self._client is None:
                self._client = httpx.Client(follow_redirects=False, trust_env=False)
        try:
            response = self._client.get(url, timeout=timeout)
        except httpx.HTTPError as exc:
            raise ProbeFailed(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        ok = response.status_code == status if status is not None else 200 <= response.status_code < 400
        if not ok:
            raise ProbeFailed(f"GET {url}: status {response.status_code}")
        return f"status {response.status_code}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def tcp_check(host: str, port: int, timeout: float) -> str:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return f"connected to {host}:{port}"
    except OSError as exc:
        raise ProbeFailed(f"tcp {host}:{port}: {exc.strerror or exc}") from exc


def exec_check(seam: ProcessSeam, argv: tuple[str, ...], cwd: Path, env: Mapping[str, str],
               timeout: float) -> str:
    done = threading.Event()
    result: list = []

    def on_exit(status) -> None:
        result.append(status)
        done.set()

    try:
        spawned = seam.spawn(argv, cwd=cwd, env=env, on_exit=on_exit)
    except SpawnError as exc:
        raise ProbeFailed(str(exc)) from exc
    if not done.wait(timeout):
        seam.signal_group(spawned.pgid, 9)
        done.wait(5)
        raise ProbeFailed(f"exec {argv[0]}: timed out after {timeout:g}s")
    status = result[0]
    if not status.ok:
        raise ProbeFailed(f"exec {argv[0]}: {status.describe()}")
    return "exit code 0"
