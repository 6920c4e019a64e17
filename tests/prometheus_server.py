"""A real Prometheus server (Debian `prometheus`) for the tests that check what one reads off
/metrics (tests/test_metrics.py, tests/test_metrics_restarts.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import free_port, stop_process


class Prometheus:
    """Prometheus scraping one target every second, its TSDB and log in `tmp_path`; the test
    is skipped where it is not installed."""

    def __init__(self, tmp_path: Path, target: str) -> None:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not os.path.exists(binary):
            pytest.skip("prometheus is not installed (Debian package `prometheus`; .ci/run installs it)")
        self.log = tmp_path / "prometheus.log"
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(textwrap.dedent(f"""
            global: {{scrape_interval: 1s, evaluation_interval: 1s}}
            scrape_configs:
              - job_name: unified
                static_configs: [{{targets: ["{target}"]}}]
        """))
        self.api = f"http://127.0.0.1:{free_port()}/api/v1"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address={self.api.split('/')[2]}"],
                stdout=subprocess.DEVNULL, stderr=log)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]] | None:
        params = {"query": promql} if at is None else {"query": promql, "time": repr(at)}
        try:
            answer = httpx.get(f"{self.api}/query", params=params, timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None
        return answer["data"]["result"] if answer.get("status") == "success" else None

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def targets_up(self) -> list[dict[str, Any]] | None:
        """The targets whose last scrape succeeded; None while the server does not answer."""
        try:
            active = httpx.get(f"{self.api}/targets", timeout=2).json()["data"]["activeTargets"]
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        return [t for t in active if t["health"] == "up"]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:]

    def close(self) -> None:
        stop_process(self.proc, 30)
