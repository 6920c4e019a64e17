"""Recovery over real children: freezes, probes, memory, circuit, notify, cascades, builds."""

import json
import os
import signal

import httpx
import pytest

from harness import SupervisorProcess, crasher_service, free_port, heartbeat_service, wait_until


def crash_dumps(sup):
    directory = sup.state_dir / "crashes"
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))] if directory.exists() else []


def start(sup, service):
    """An operator's start through the control API: accepted, not yet done."""
    answer = httpx.post(f"{sup.api_url}/api/services/{service}/start", headers={"X-API-Key": sup.api_key()},
                        timeout=10)
    assert answer.status_code == 202, answer.text


def test_silent_heartbeat_soft_then_hard_freeze_restarts_with_a_dump(tmp_path):
    pause = tmp_path / "pause"
    with SupervisorProcess(tmp_path, heartbeat_service(
            pause, "heartbeat: {timeout: 300ms, hard_timeout: 800ms}", "restart: {backoff: {initial: 0}}")) as sup:
        first = sup.wait_state("svc", "running")["pid"]
        pause.touch()
        wait_until(lambda: sup.events("soft freeze: no heartbeat"), 10, "soft freeze")
        wait_until(lambda: sup.events("freeze proven; SIGABRT then SIGKILL"), 10, "hard freeze")
        pause.unlink()
        sup.wait_state("svc", "running", count=2)
        exits = sup.events("exited")
        assert exits[0]["pid"] == first and exits[0]["reason"] == "freeze"
        wait_until(lambda: crash_dumps(sup), 5, "crash dump")
        dump = crash_dumps(sup)[0]
        assert dump["reason"] == "freeze" and dump["pid"] == first
        assert dump["freeze"]["verdict"].startswith("idle")       # it slept, it did not spin
        assert dump["freeze"]["threads"] and "state" in dump["freeze"]
        mode = (sup.state_dir / "crashes").iterdir().__next__().stat().st_mode & 0o777
        assert mode == 0o600
        assert sup.stop() == 0


def test_heartbeat_after_soft_freeze_clears_it(tmp_path):
    pause = tmp_path / "pause"
    with SupervisorProcess(tmp_path, heartbeat_service(pause, "heartbeat: {timeout: 300ms}")) as sup:
        sup.wait_state("svc", "running")
        pause.touch()
        wait_until(lambda: sup.events("soft freeze: no heartbeat"), 10, "soft freeze")
        pause.unlink()
        wait_until(lambda: sup.events("heartbeat resumed: freeze cleared"), 10, "freeze cleared")
        assert not sup.events("exited")
        assert sup.stop() == 0


def test_sigstopped_child_is_a_hard_freeze(tmp_path):
    pause = tmp_path / "pause"
    with SupervisorProcess(tmp_path, heartbeat_service(
            pause, "heartbeat: {timeout: 300ms, hard_timeout: 30s}", "restart: {backoff: {initial: 0}}")) as sup:
        first = sup.wait_state("svc", "running")["pid"]
        os.kill(first, signal.SIGSTOP)
        sup.wait_state("svc", "running", count=2, timeout=10)   # far sooner than hard_timeout
        proven = sup.events("freeze proven; SIGABRT then SIGKILL")[0]
        assert proven["verdict"].startswith("stopped")
        assert sup.events("exited")[0]["reason"] == "freeze"
        assert sup.stop() == 0


def test_liveness_failure_restarts_and_readiness_failure_does_not(tmp_path):
    live_port, ready_port = free_port(), free_port()
    live_flag, ready_flag = tmp_path / "live-bad", tmp_path / "ready-bad"
    with SupervisorProcess(tmp_path, f"""
        services:
          live:
            command: ["{{py}}", "{{children}}/http_health.py", "{live_port}", "{live_flag}"]
            liveness: {{http: {{url: "http://127.0.0.1:{live_port}/health"}}, period: 100ms, failure_threshold: 2}}
            restart: {{backoff: {{initial: 0}}}}
          ready:
            command: ["{{py}}", "{{children}}/http_health.py", "{ready_port}", "{ready_flag}"]
            readiness: {{http: {{url: "http://127.0.0.1:{ready_port}/health"}}, period: 100ms, failure_threshold: 2}}
    """) as sup:
        sup.wait_state("live", "running")
        ready_pid = sup.wait_state("ready", "running")["pid"]
        sup.wait_api()
        live_flag.touch()
        ready_flag.touch()
        wait_until(lambda: any(e["reason"] == "liveness" for e in sup.events("exited")), 10,
                   "a liveness restart")
        live_flag.unlink()

        def ready_service():
            return httpx.get(sup.api_url + "/api/services/ready", headers=sup.auth(), timeout=5).json()
        # the readiness probe did fail (the liveness restart alone proves nothing about it) ...
        wait_until(lambda: (s := ready_service())["ready"] is False and s["health"] == "unhealthy",
                   10, "ready marked not ready and unhealthy", seen=ready_service)
        # ... and that only marked it: never stopped, the same process
        assert not sup.events("exited", "ready")
        assert ready_service()["pid"] == ready_pid
        assert sup.stop() == 0


def test_memory_limit_triggers_graceful_restart(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          hog:
            command: ["{py}", "{children}/hog.py", "150"]
            limits: {max_memory: 100MB}
            restart: {backoff: {initial: 10s}}
    """) as sup:
        wait_until(lambda: sup.events("memory limit exceeded: graceful restart"), 15, "memory restart")
        exit_ = wait_until(lambda: sup.events("exited"), 10, "exit")[0]
        assert exit_["reason"] == "memory" and exit_["signal"] is None and exit_["code"] == 0
        assert sup.stop() == 0


def test_circuit_opens_then_half_opens_after_cooldown(tmp_path):
    runs = tmp_path / "runs"
    with SupervisorProcess(tmp_path, crasher_service(
            runs, "{backoff: {initial: 0}, max_restarts: 2, window: 60s, cooldown: 1s}")) as sup:
        # after the cooldown one start is tried; it crashes, so the circuit opens again
        sup.wait_state("svc", "fatal", count=2, timeout=30)
        # counted between the fatals in the records, not from the runs file read now: with a
        # 1 s cooldown, a stall lets the next half-open start land before such a read
        states = sup.states("svc")
        first = states.index("fatal")
        second = states.index("fatal", first + 1)
        assert states[:first].count("starting") == 3
        assert states[first + 1:second].count("starting") == 1
        reasons = [r.get("reason") for r in sup.records() if r.get("state") == "pending"]
        assert "half-open" in reasons
        assert sup.stop() == 0


def test_an_operators_start_after_the_circuit_opened_gets_the_full_budget(tmp_path):
    runs = tmp_path / "runs"
    with SupervisorProcess(tmp_path, crasher_service(
            runs, "{backoff: {initial: 0}, max_restarts: 2, window: 60s}")) as sup:
        sup.wait_api()
        sup.wait_state("svc", "fatal")
        assert len(runs.read_text().split()) == 3   # the start and its 2 restarts
        start(sup, "svc")
        sup.wait_state("svc", "fatal", count=2, timeout=20)
        assert len(runs.read_text().split()) == 6   # and again, not 1 run and straight to fatal
        assert sup.stop() == 0


def test_watchdog_trigger_restarts_with_reason_notify(tmp_path):
    flag = tmp_path / "never"
    with SupervisorProcess(tmp_path, heartbeat_service(
            flag, "restart: {backoff: {initial: 0}}", every=0.1, argv=("trigger",))) as sup:
        sup.wait_state("svc", "running", count=2)
        assert sup.events("exited")[0]["reason"] == "notify"
        assert sup.stop() == 0


def test_missing_interpreter_is_fatal_at_once(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("#!/nonexistent/python3\nprint('never')\n")
    script.chmod(0o755)
    with SupervisorProcess(tmp_path, f"""
        services:
          svc:
            command: ["{script}"]
            restart: {{policy: always, backoff: {{initial: 0}}}}
    """) as sup:
        rec = sup.wait_state("svc", "fatal")
        assert "its #! interpreter /nonexistent/python3 does not exist" in rec["note"]
        assert sup.states("svc").count("starting") <= 1   # never retried
        assert sup.stop() == 0


def test_dependency_restart_cascades_to_dependents(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          db:
            command: ["{py}", "{children}/sleeper.py"]
            restart: {backoff: {initial: 0}}
          api:
            command: ["{py}", "{children}/sleeper.py"]
            depends_on: {db: {condition: started, restart: true}}
          other:
            command: ["{py}", "{children}/sleeper.py"]
            depends_on: [db]
    """) as sup:
        sup.wait_state("api", "running")
        sup.wait_state("other", "running")
        os.kill(sup.record("db", "running")["pid"], signal.SIGKILL)
        sup.wait_state("api", "running", count=2)
        assert sup.events("exited", "api")[0]["reason"] == "dependency"
        assert not sup.events("exited", "other")
        assert sup.stop() == 0


def test_exit_on_critical_failure_stops_everything_with_exit_1(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          bad:
            command: ["{py}", "{children}/crasher.py", "127"]
          fine:
            command: ["{py}", "{children}/sleeper.py"]
    """, supervisor="exit_on_critical_failure: true") as sup:
        assert sup.proc.wait(20) == 1
        assert sup.state("fine") in ("stopped", None)


def test_sigkill_near_memory_limit_is_classified(tmp_path):
    # The child holds ~92 % of its limit for 2.5 s (sampled every second), then is SIGKILLed
    # by no one the supervisor knows of: what the kernel's OOM killer looks like from outside.
    with SupervisorProcess(tmp_path, """
        services:
          hog:
            command: ["{py}", "{children}/hog.py", "74", "2.5"]
            limits: {max_memory: 100MB}
            restart: {policy: never}
    """) as sup:
        rec = wait_until(lambda: sup.events("exited"), 15, "exit")[0]
        assert rec["signal"] == "SIGKILL" and rec["reason"] == "crash"
        assert "probably out of memory" in rec["description"], rec
        assert sup.stop() == 0


@pytest.mark.parametrize("succeed", [True, False])
def test_build_runs_once_per_input_change_and_failure_is_fatal(tmp_path, succeed):
    (tmp_path / "input.txt").write_text("v1")
    code = 0 if succeed else 3
    config = f"""
        services:
          svc:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            cwd: {tmp_path}
            build:
              command: ["{{py}}", "{{children}}/crasher.py", "{code}", "{tmp_path}/builds"]
              inputs: ["input.txt"]
    """
    with SupervisorProcess(tmp_path, config) as sup:
        if not succeed:
            rec = sup.wait_state("svc", "fatal")
            assert "build failed: exit code 3" in rec["note"] and "crasher exiting" in rec["note"]
            assert sup.stop() == 0
            return
        sup.wait_state("svc", "running")
        assert "building" in sup.states("svc")
        assert sup.stop() == 0
    with SupervisorProcess(tmp_path, config) as sup:   # same inputs: skipped
        sup.wait_state("svc", "running")
        assert sup.events("build finished")[-1]["detail"].startswith("inputs unchanged")
        assert sup.stop() == 0
    assert len((tmp_path / "builds").read_text().split()) == 1


def test_a_build_that_timed_out_does_not_fail_the_next_one(tmp_path):
    with SupervisorProcess(tmp_path, f"""
        services:
          svc:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            build: {{command: ["{{py}}", "{{children}}/slow_once.py", "{tmp_path}/marker"], timeout: 3s}}
    """) as sup:
        sup.wait_api()
        rec = sup.wait_state("svc", "fatal", timeout=30)
        assert "timed out after 3s" in rec["note"]
        start(sup, "svc")
        sup.wait_state("svc", "running", timeout=30)  # this build ends at once, and well
        assert sup.stop() == 0
