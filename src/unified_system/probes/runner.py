"""Runs probe attempts on a small worker pool and posts each result back to the owner."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from unified_system.core.events import ProbeResult
from unified_system.probes.checks import HttpChecker, ProbeFailed, exec_check, tcp_check
from unified_system.proc.seam import ProcessSeam

if TYPE_CHECKING:
    from unified_system.config.schema import Probe


class ProbeRunner:
    def __init__(self, seam: ProcessSeam, post: Callable[[object], None], workers: int = 16) -> None:
        self._seam = seam
        self._post = post
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
        self._http = HttpChecker()

    def submit(self, inc: int, kind: str, probe: "Probe", cwd: Path, env: Mapping[str, str]) -> None:
        self._pool.submit(self._attempt, inc, kind, probe, cwd, env)

    def _attempt(self, inc: int, kind: str, probe: "Probe", cwd: Path, env: Mapping[str, str]) -> None:
        started = time.monotonic()
        try:
            if probe.http is not None:
                detail = self._http(probe.http.url, probe.http.status, probe.timeout)
            elif probe.tcp is not None:
                detail = tcp_check(probe.tcp.host, probe.tcp.port, probe.timeout)
            elif probe.exec is not None:
                detail = exec_check(self._seam, probe.exec.command, cwd, env, probe.timeout)
            else:
                raise ProbeFailed("no check configured")
            ok = True
        except ProbeFailed as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # a probe bug must not kill the worker or the owner
            ok, detail = False, f"probe error: {type(exc).__name__}: {exc}"
        self._post(ProbeResult(inc, kind, ok, detail, time.monotonic() - started))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()
