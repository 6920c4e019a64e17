"""deploy/: the Prometheus alert rules pass promtool's own checks and unit tests, and every
query in them and in the Grafana dashboard names a series a running supervisor exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import httpx
import pytest
import yaml

from harness import ROOT, SupervisorProcess, wait_until

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "unified-system.json"
KEYWORDS = {"and", "or", "unless", "by", "on", "without", "ignoring", "group_left", "group_right",
            "bool", "offset", "inf", "nan"}
SYNTHETIC = {"up"}   # written by Prometheus itself for every target


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`)")
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: what is left once strings, label
    matchers, ranges and groupings are cut, and that is neither a function nor a keyword."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end():].lstrip()
        if not rest.startswith("(") and match.group(0).lower() not in KEYWORDS:
            names.add(match.group(0))
    return names


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [r["expr"] for group in rules["groups"] for r in group["rules"]]


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", var["definition"]))
    return exprs


def test_the_rules_pass_promtool_check_and_their_unit_tests():
    tool = promtool()
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"],
                 ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_every_rule_has_a_unit_test():
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", [])
              if case.get("exp_alerts")}
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} == tested


def test_the_query_parser_finds_names_and_skips_functions():
    assert metric_names('sum by (le, service) (rate(a_bucket{job="x{y}"}[5m])) / on(job) b > 0.9') \
        == {"a_bucket", "b"}


def exposed(text: str) -> set[str]:
    names = set(re.findall(r"^# TYPE (\S+)", text, re.M))
    names |= set(re.findall(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", text, re.M))
    return names


def test_every_query_names_a_series_the_supervisor_exposes(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          web:
            command: ["{py}", "{children}/heartbeat.py", "0.2", "PAUSE"]
            heartbeat: {timeout: 5s}
            limits: {max_memory: 512MB}
            readiness: {notify: true}
            liveness: {exec: {command: ["true"]}, period: 200ms}
    """.replace("PAUSE", str(tmp_path / "pause"))) as sup:
        sup.wait_api()
        sup.wait_state("web", "running")
        key = sup.api_key()
        headers = {"X-API-Key": key}
        wait_until(lambda: all(f"{name}{{" in httpx.get(sup.api_url + "/metrics", headers=headers,
                                                              timeout=5).text
                               for name in ("unified_service_heartbeat_age_seconds",
                                            "unified_probe_duration_seconds_bucket")),
                   15, "a heartbeat age and a probe duration sample")
        text = httpx.get(sup.api_url + "/metrics", headers=headers, timeout=5).text
        assert sup.stop() == 0
    have = exposed(text) | SYNTHETIC
    assert 'unified_service_memory_limit_bytes{service="web"} 512000000' in text
    for source, exprs in (("alerts.yml", rule_exprs()), ("unified-system.json", dashboard_exprs())):
        assert exprs, source
        for expr in exprs:
            missing = metric_names(expr) - have
            assert not missing, f"{source}: {expr!r} reads {sorted(missing)}, which /metrics does not expose"
