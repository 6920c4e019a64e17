"""Regression tests, each named after the incident it pins down."""

import httpx

from harness import SupervisorProcess, crasher_service, heartbeat_service, wait_until


def test_stop_racing_a_flapping_crash_keeps_the_owner_alive(tmp_path):
    # Incident: a stop command and the child's own exit in one batch took running -> stopped,
    # an edge missing from the table; the owner raised and the supervisor died.
    with SupervisorProcess(tmp_path, """
        services:
          flap:
            command: ["{py}", "{children}/crasher.py", "1"]
            restart: {backoff: {initial: 0}, max_restarts: 100000, window: 1s}
    """) as sup:
        sup.wait_api()
        key = {"X-API-Key": sup.api_key()}
        for _ in range(15):
            for action in ("stop", "start"):
                r = httpx.post(f"{sup.api_url}/api/services/flap/{action}", headers=key, timeout=10)
                assert r.status_code == 202, r.text
        assert sup.proc.poll() is None, sup.output()[-2000:]
        assert not [r for r in sup.records() if r.get("event", "").startswith("owner bug")]
        assert sup.stop() == 0


def test_circuit_opens_with_a_budget_above_256(tmp_path):
    # Incident: restart times were kept in a deque of 256, so a budget of 300 never tripped.
    runs = tmp_path / "runs"
    with SupervisorProcess(tmp_path, crasher_service(
            runs, "{backoff: {initial: 0}, max_restarts: 300, window: 10m}", name="bad")) as sup:
        sup.wait_state("bad", "fatal", timeout=120)
        assert len(runs.read_text().split()) == 301
        assert sup.stop() == 0


def test_heartbeat_age_keeps_moving_between_snapshots(tmp_path):
    # Incident: the age was computed when the snapshot was built, so it froze between changes.
    pause = tmp_path / "pause"
    with SupervisorProcess(tmp_path, heartbeat_service(pause, "heartbeat: {timeout: 30s}", name="beat",
                                                       every=0.1)) as sup:
        sup.wait_state("beat", "running")
        sup.wait_api()
        pause.touch()   # heartbeats stop: nothing changes in the snapshot from here on

        def age():
            answer = httpx.get(f"{sup.api_url}/api/services/beat", headers=sup.auth(), timeout=5)
            return answer.json()["heartbeat_age_seconds"]

        first = wait_until(lambda: age() is not None and age(), 10, "an age")
        wait_until(lambda: age() > first + 0.5, 10, "the age to grow")
        metrics = httpx.get(f"{sup.api_url}/metrics", timeout=5).text
        assert 'unified_service_heartbeat_age_seconds{service="beat"}' in metrics
        assert sup.stop() == 0
