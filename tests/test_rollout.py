"""Rolling restarts prove the new incarnation before the old one is signalled (SPEC §9,
rollout), and a failed rollout leaves the old one serving."""

from __future__ import annotations

import signal
from datetime import datetime

import httpx
import psutil
from test_held_sockets import Load, get, rolled, web

from harness import SupervisorProcess, free_port, wait_until

PROVING = "rolling restart: new incarnation ready, proving it"
ABORTED = "rolling restart aborted: the new incarnation failed; the old one keeps serving"


def api(sup: SupervisorProcess, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"{sup.api_url}{path}", headers={"X-API-Key": sup.api_key()}, timeout=10)


def events(sup: SupervisorProcess, name: str) -> list[dict]:
    return [r for r in sup.records() if r.get("event") == name]


def at(record: dict) -> float:
    return datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()


def reload_with(sup: SupervisorProcess, old: str, new: str) -> None:
    text = sup.config_path.read_text()
    assert old in text
    sup.config_path.write_text(text.replace(old, new))
    sup.signal(signal.SIGHUP)


def test_the_old_incarnation_is_signalled_only_after_min_ready(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, web(port, "rollout: {min_ready: 1s}")) as sup:
        old = sup.wait_state("web", "running", timeout=30)["pid"]
        sup.wait_api(30)
        assert api(sup, "POST", "/api/services/web/restart").status_code == 202
        wait_until(lambda: rolled(sup), 30, "the rollout", seen=lambda: sup.states("web"))
        (proving,), (proven,) = events(sup, PROVING), rolled(sup)
        assert proven["old_pid"] == old and proven["new_pid"] == proving["pid"] != old
        assert at(proven) - at(proving) >= 0.95   # the log's clock is the wall clock
        stopping = [r for r in sup.records() if r.get("event") == "state" and r.get("pid") == old
                    and r.get("state") == "stopping"]
        assert stopping and at(stopping[0]) >= at(proven)
        # LAST EXIT: the old incarnation's real exit (held_http exits 0 on SIGTERM), not "(?)"
        wait_until(lambda: psutil.pid_exists(old) is False or psutil.Process(old).status() == "zombie",
                   30, "the old incarnation gone")
        last = wait_until(lambda: (api(sup, "GET", "/api/services/web").json()["last_exit"] or {})
                          .get("code") == 0 and api(sup, "GET", "/api/services/web").json()["last_exit"],
                          30, "the old incarnation's exit as last_exit",
                          seen=lambda: api(sup, "GET", "/api/services/web").json()["last_exit"])
        assert (last["reason"], last["signal"]) == ("manual", None), last
        assert sup.stop() == 0


def test_a_release_that_says_ready_then_exits_is_never_let_in(tmp_path):
    # gunicorn's pattern: READY=1 from the arbiter, then the app fails to load and it exits
    port = free_port()
    with SupervisorProcess(tmp_path, web(port, "env: {ROUND: '0'}")) as sup:
        old = sup.wait_state("web", "running", timeout=30)["pid"]
        sup.wait_api(30)
        load = Load(port, max_seconds=60)
        load.start()
        try:
            wait_until(lambda: load.ok > 20, 20, "traffic")
            reload_with(sup, "ROUND: '0'", "EXIT_AFTER_READY: '0.3'")
            wait_until(lambda: events(sup, ABORTED), 30, "the rollout to fail", seen=lambda: sup.states("web"))
            wait_until(lambda: events(sup, "reload: rolling back a changed service"), 30, "the rollback")
            served = load.ok
            wait_until(lambda: load.ok > served + 20, 20, "traffic after the failed rollout")
        finally:
            load.halt.set()
            load.join(10)
        assert load.failed == [], load.failed[:5]
        assert load.pids == {str(old)}            # only the old incarnation ever answered
        obj = api(sup, "GET", "/api/services/web").json()
        assert (obj["pid"], obj["state"], obj["ready"]) == (old, "running", True), obj
        assert obj["last_exit"]["reason"] == "rollout failed" and obj["last_exit"]["code"] == 1, obj
        assert "exited (exit code 1) before it was proven" in obj["last_exit"]["description"]
        assert not [r for r in sup.records() if r.get("event") == "state" and r.get("pid") == old
                    and r.get("state") == "stopping"]
        # the reload was rolled back: the next restart runs the previous definition again
        assert api(sup, "POST", "/api/services/web/restart").status_code == 202
        wait_until(lambda: rolled(sup), 30, "a rollout of the previous definition")
        assert sup.stop() == 0


def test_a_new_incarnation_not_proven_in_time_is_stopped_and_the_old_one_serves(tmp_path):
    port = free_port()
    config = web(port, "env: {ROUND: '0'}", "rollout: {timeout: 1s}", "stop: {timeout: 2s}")
    with SupervisorProcess(tmp_path, config) as sup:
        old = sup.wait_state("web", "running", timeout=30)["pid"]
        sup.wait_api(30)
        reload_with(sup, "ROUND: '0'", "READY_DELAY: '60'")   # it would say READY=1 a minute later
        (aborted,) = wait_until(lambda: events(sup, ABORTED), 30, "the rollout to time out",
                                seen=lambda: sup.states("web"))
        assert aborted["why"] == "not proven within 1s (+ min_ready)"
        new = aborted["new_pid"]
        wait_until(lambda: not psutil.pid_exists(new) or psutil.Process(new).status() == "zombie", 30,
                   "the late new incarnation stopped")
        assert get(port) == (200, str(old))
        obj = api(sup, "GET", "/api/services/web").json()
        assert (obj["pid"], obj["state"], obj["last_exit"]["reason"]) == (old, "running", "rollout failed")
        assert sup.stop() == 0


def test_a_shutdown_while_proving_is_no_failed_rollout(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, web(port, "rollout: {min_ready: 60s}")) as sup:
        sup.wait_state("web", "running", timeout=30)
        sup.wait_api(30)
        assert api(sup, "POST", "/api/services/web/restart").status_code == 202
        wait_until(lambda: events(sup, PROVING), 30, "the new incarnation proving")
        assert sup.stop() == 0
        assert not events(sup, ABORTED) and not rolled(sup)


def test_a_new_incarnation_that_loses_readiness_while_proving_is_stopped(tmp_path):
    port, flag = free_port(), tmp_path / "unready"
    probe = f'["{{py}}", "-c", "import os, sys; sys.exit(os.path.exists(\'{flag}\'))"]'
    config = f"""
        services:
          web:
            command: ["{{py}}", "{{children}}/held_http.py"]
            listen: [{{port: {port}}}]
            readiness: {{exec: {{command: {probe}}}, period: 100ms, failure_threshold: 2}}
            rollout: {{min_ready: 30s}}
            stop: {{timeout: 5s}}
    """
    with SupervisorProcess(tmp_path, config) as sup:
        old = sup.wait_state("web", "running", timeout=30)["pid"]
        sup.wait_api(30)
        assert api(sup, "POST", "/api/services/web/restart").status_code == 202
        wait_until(lambda: events(sup, PROVING), 30, "the new incarnation proving")
        flag.touch()   # readiness fails now (for both: the probe is the service's)
        (aborted,) = wait_until(lambda: events(sup, ABORTED), 30, "the rollout to fail")
        assert aborted["why"].startswith("failed its readiness probe"), aborted
        flag.unlink()
        wait_until(lambda: api(sup, "GET", "/api/services/web").json()["ready"], 30, "the old one ready again")
        assert get(port) == (200, str(old))
        assert api(sup, "GET", "/api/services/web").json()["last_exit"]["reason"] == "rollout failed"
        assert sup.stop() == 0
