"""unified_service_restarts_total exists at 0 for every reason from the moment a service is
defined, so a real Prometheus' increase() counts the first restart too (issue 15 item 4: two
kills read 1.04 when the series appeared only at the first restart)."""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_server import Prometheus

from harness import CHILDREN, PY, SupervisorProcess, wait_until

REASONS = {"crash", "liveness", "freeze", "memory", "watch", "reload", "dependency", "manual",
           "notify", "stop"}


def restarts(sup: SupervisorProcess, key: str) -> dict[tuple[str, str], float]:
    answer = httpx.get(sup.api_url + "/metrics", headers={"X-API-Key": key}, timeout=5)
    assert answer.status_code == 200, answer.text[:300]
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    return {(s.labels["service"], s.labels["reason"]): s.value
            for s in families["unified_service_restarts"].samples if s.name.endswith("_total")}


def test_every_reason_starts_at_zero_for_defined_and_reloaded_services(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          web: {command: ["{py}", "{children}/sleeper.py"]}
          off: {command: ["{py}", "{children}/sleeper.py"], enabled: false}
    """) as sup:
        sup.wait_api(30)
        key = sup.api_key()
        assert restarts(sup, key) == {(s, r): 0.0 for s in ("web", "off") for r in REASONS}

        text = sup.config_path.read_text()
        sup.config_path.write_text(text + f'  added: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}\n')
        answer = httpx.post(sup.api_url + "/api/reload", headers={"X-API-Key": key}, timeout=30)
        assert answer.status_code == 200 and answer.json()["added"] == ["added"], answer.text
        wait_until(lambda: ("added", "crash") in restarts(sup, key), 10,
                   "the reloaded service's series", seen=lambda: restarts(sup, key))
        assert restarts(sup, key) == {(s, r): 0.0 for s in ("web", "off", "added") for r in REASONS}
        assert sup.stop() == 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_prometheus_increase_over_two_kills_reads_two(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          web:
            command: ["{py}", "{children}/sleeper.py"]
            restart: {policy: always, backoff: {initial: 100ms, jitter: 0}}
    """) as sup:
        sup.wait_api(30)
        key = sup.api_key()
        host, port = sup.api_address()
        prom = Prometheus(tmp_path, f"{host}:{port}")
        series = 'unified_service_restarts_total{service="web",reason="crash"}'
        try:
            # Two scrapes before the first kill: the counter's history starts before it moves.
            wait_until(lambda: (v := prom.value('count_over_time(up{job="unified"}[10m])')) and v >= 2
                       and prom.value('min_over_time(up{job="unified"}[10m])') == 1,
                       90, "two successful scrapes", seen=prom.tail)

            def service() -> dict[str, Any]:
                answer = httpx.get(sup.api_url + "/api/services/web", headers={"X-API-Key": key}, timeout=5)
                return answer.json()
            for kill in (1, 2):
                pid = wait_until(lambda: (s := service())["state"] == "running" and s["pid"], 30,
                                 "web running", seen=service)
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda k=kill: service()["restarts"] == k and service()["state"] == "running",
                           30, f"restart {kill}", seen=service)
                wait_until(lambda k=kill: prom.value(series) == k, 30,
                           f"Prometheus to scrape {kill} restart(s)", seen=lambda: prom.value(series))
                # Several scrapes at each value, as on any real dashboard: with two samples in
                # all, Prometheus' extrapolation happens to read 2 even without the zero series.
                seen = prom.value(f"count_over_time({series}[10m])") or 0
                wait_until(lambda n=seen: (prom.value(f"count_over_time({series}[10m])") or 0) >= n + 4,
                           30, "4 more scrapes", seen=prom.tail)
            # Evaluated at the last scrape, over a range that holds every sample: what an
            # operator's dashboard reads once the counter has moved twice.
            last = float(prom.query(f"timestamp({series})")[0]["value"][1])
            result = prom.query(f"increase({series}[10m])", at=last)
            assert result, prom.query(series)
            increase = float(result[0]["value"][1])
            assert abs(increase - 2) <= 0.1, increase
        finally:
            prom.close()
        assert sup.stop() == 0
