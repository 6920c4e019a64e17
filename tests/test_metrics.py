"""/metrics: every SPEC §7 series, promtool-clean, and scraped by a real Prometheus."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_server import Prometheus

from harness import SupervisorProcess, free_port, wait_until

STATES = {"disabled", "pending", "building", "starting", "running", "stopping", "stopped",
          "exited", "backoff", "fatal"}
PER_SERVICE = ["unified_service_up", "unified_service_ready", "unified_service_state",
               "unified_service_uptime_seconds", "unified_service_memory_rss_bytes",
               "unified_service_cpu_seconds", "unified_service_circuit_open",
               "unified_service_freezes"]


def scrape(sup) -> dict:
    r = httpx.get(sup.api_url + "/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def samples(families, family, **labels):
    return [s for s in families[family].samples
            if all(s.labels.get(k) == v for k, v in labels.items())]


@pytest.fixture
def sup(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        services:
          web: {{command: ["{{py}}", "{{children}}/sleeper.py"]}}
          tcp:
            command: ["{{py}}", "{{children}}/tcp_server.py", "{port}"]
            readiness: {{tcp: {{port: {port}}}, period: 100ms}}
          down:
            command: ["{{py}}", "{{children}}/crasher.py", "0"]
    """) as s:
        s.wait_api()
        s.wait_state("web", "running")
        s.wait_state("tcp", "running")
        s.wait_state("down", "exited")
        yield s
        assert s.stop() == 0


def test_every_spec_series(sup):
    fams = scrape(sup)
    for name in PER_SERVICE:
        assert {s.labels["service"] for s in fams[name].samples} == {"web", "tcp", "down"}, name
    for svc, current in (("web", "running"), ("tcp", "running"), ("down", "exited")):
        states = {s.labels["state"]: s.value for s in samples(fams, "unified_service_state", service=svc)}
        assert set(states) == STATES and states[current] == 1 and sum(states.values()) == 1
    assert samples(fams, "unified_service_up", service="web")[0].value == 1
    assert samples(fams, "unified_service_up", service="down")[0].value == 0
    assert samples(fams, "unified_service_ready", service="tcp")[0].value == 1
    assert samples(fams, "unified_service_memory_rss_bytes", service="web")[0].value > 1e6
    assert fams["unified_service_cpu_seconds"].type == "counter"
    assert fams["unified_service_freezes"].type == "counter"
    assert {s.labels["kind"] for s in fams["unified_service_freezes"].samples} == {"soft", "hard"}
    assert {s.labels["result"] for s in fams["unified_config_reloads"].samples} == {"success", "failure"}
    probe = fams["unified_probe_duration_seconds"]
    assert probe.type == "histogram"
    count = [s for s in probe.samples if s.name.endswith("_count")
             and s.labels == {"service": "tcp", "probe": "readiness"}]
    assert count and count[0].value >= 1
    assert "unified_service_heartbeat_age_seconds" in fams   # described, no samples without heartbeats
    assert "process_resident_memory_bytes" in fams and "process_cpu_seconds" in fams


def test_restart_counter_and_uptime(sup):
    key = sup.api_key()
    before = scrape(sup)
    up0 = samples(before, "unified_service_uptime_seconds", service="web")[0].value
    wait_until(lambda: samples(scrape(sup), "unified_service_uptime_seconds", service="web")[0].value
               > up0 + 0.3, 5, "uptime to grow between scrapes")
    r = httpx.post(sup.api_url + "/api/services/web/restart", headers={"X-API-Key": key}, timeout=5)
    assert r.status_code == 202

    def restarted():
        fams = scrape(sup)
        got = samples(fams, "unified_service_restarts", service="web", reason="manual")
        return got and got[0].value == 1
    wait_until(restarted, 5, "restarts_total{reason=manual} to count the restart")


def test_promtool_accepts_the_exposition(sup):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`)")
    text = httpx.get(sup.api_url + "/metrics", timeout=5).text
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_a_real_prometheus_scrapes_it(sup, tmp_path):
    host, port = sup.api_address()
    with Prometheus(tmp_path, f"{host}:{port}") as prom:
        targets = wait_until(prom.targets_up, 60, "prometheus to scrape the supervisor", seen=prom.tail)
        assert targets[0]["scrapeUrl"] == f"http://{host}:{port}/metrics"
        result = wait_until(lambda: (s := prom.query("unified_service_up")) and len(s) == 3 and s, 30, "3 series")
        assert sorted(r["metric"]["service"] for r in result) == ["down", "tcp", "web"]
        values = {r["metric"]["service"]: r["value"][1] for r in result}
        assert values == {"web": "1", "tcp": "1", "down": "0"}


def test_heartbeat_age_only_for_services_with_heartbeats(tmp_path):
    with SupervisorProcess(tmp_path, f"""
        services:
          web: {{command: ["{{py}}", "{{children}}/sleeper.py"]}}
          hb:
            command: ["{{py}}", "{{children}}/heartbeat.py", "0.2", "{tmp_path}/pause"]
            heartbeat: {{timeout: 5s}}
    """) as s:
        s.wait_api()
        s.wait_state("hb", "running")

        def ages():
            fams = scrape(s)
            return {x.labels["service"]: x.value
                    for x in fams["unified_service_heartbeat_age_seconds"].samples}
        got = wait_until(lambda: (a := ages()) and a, 10, "a heartbeat age sample")
        assert set(got) == {"hb"} and 0 <= got["hb"] < 5
        assert s.stop() == 0


def test_hooks_called_before_the_metrics_exist_are_replayed_into_them():
    from unified_system.runtime import _Recorder

    class Seen:
        def __init__(self):
            self.calls = []

        def restart(self, service, reason):
            self.calls.append(("restart", service, reason))

    early, real = _Recorder(), Seen()
    early.restart("web", "crash")   # the first reconcile restarting a service from state.json
    early.replay(real)
    assert real.calls == [("restart", "web", "crash")]
