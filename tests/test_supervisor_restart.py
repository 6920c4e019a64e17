"""Crash and restart under each policy, backoff growth and reset, not-startable programs."""

import pytest

from harness import SupervisorProcess, crasher_service, wait_until


def pids(path):
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("policy,code,restarts,final", [
    ("always", 0, True, None),
    ("always", 3, True, None),
    ("on-failure", 3, True, None),
    ("on-failure", 0, False, "exited"),
    ("never", 3, False, "exited"),
])
def test_policy(tmp_path, policy, code, restarts, final):
    runs = tmp_path / "runs"
    with SupervisorProcess(tmp_path, crasher_service(
            runs, f"{{policy: {policy}, backoff: {{initial: 10ms, jitter: 0}}, max_restarts: 100}}", code)) as sup:
        if restarts:
            wait_until(lambda: len(pids(runs)) >= 3, 10, "three runs", seen=lambda: sup.states("svc"))
        else:
            sup.wait_state("svc", final)
            assert len(pids(runs)) == 1
            assert sup.record("svc", final)["reason"] == "crash"
        assert sup.stop() == 0


def test_backoff_grows_then_resets_after_staying_up(tmp_path):
    runs = tmp_path / "runs"
    # lives: crash, crash, crash, stay up 4 s (> reset_after), crash, crash ...
    # A "0 s" life still includes Python start-up, so reset_after sits well above what a
    # loaded machine takes to start one, and the long life well above reset_after.
    with SupervisorProcess(tmp_path, f"""
        services:
          svc:
            command: ["{{py}}", "{{children}}/flaky.py", "{runs}", "0,0,0,4,0"]
            restart:
              backoff: {{initial: 50ms, multiplier: 2, max: 10s, jitter: 0}}
              reset_after: 3s
              max_restarts: 100
    """) as sup:
        wait_until(lambda: len([r for r in sup.records() if r.get("state") == "backoff"]) >= 5,
                   30, "five backoffs", seen=lambda: sup.states("svc"))
        delays = [r["delay"] for r in sup.records() if r.get("state") == "backoff"][:5]
        assert delays[:3] == [0.05, 0.1, 0.2]      # grows x2 on consecutive crashes
        assert delays[3] == 0.05                    # the 4 s life reset the backoff
        assert delays[4] == 0.1
        assert sup.stop() == 0


def test_zero_backoff_restarts_at_once_and_counts_restarts(tmp_path):
    runs = tmp_path / "runs"
    with SupervisorProcess(tmp_path, crasher_service(runs, "{backoff: {initial: 0}, max_restarts: 1000}")) as sup:
        wait_until(lambda: len(pids(runs)) >= 5, 10, "five runs")
        assert "backoff" not in sup.states("svc")
        assert sup.stop() == 0


@pytest.mark.parametrize("code,what", [(127, "command not found"), (126, "not executable")])
def test_not_startable_exit_codes_go_fatal_without_retry(tmp_path, code, what):
    runs = tmp_path / "runs"
    with SupervisorProcess(tmp_path, crasher_service(runs, "{policy: always, backoff: {initial: 0}}", code)) as sup:
        rec = sup.wait_state("svc", "fatal")
        assert what in rec["note"]
        assert len(pids(runs)) == 1
        assert sup.stop() == 0


def test_circuit_opens_after_budget(tmp_path):
    runs = tmp_path / "runs"
    with SupervisorProcess(tmp_path, crasher_service(
            runs, "{backoff: {initial: 0}, max_restarts: 3, window: 60s, cooldown: null}")) as sup:
        rec = sup.wait_state("svc", "fatal")
        assert "circuit open" in rec["note"]
        assert len(pids(runs)) == 4        # the first start plus max_restarts restarts
        assert sup.stop() == 0


def test_late_exit_of_old_incarnation_is_ignored(tmp_path):
    # Each crash is followed at once by a new spawn; every exit must be matched to its own
    # incarnation, so the count of spawns equals the count of exits plus the live one.
    runs = tmp_path / "runs"
    with SupervisorProcess(tmp_path, crasher_service(
            runs, "{backoff: {initial: 0}, max_restarts: 10, window: 60s, cooldown: null}")) as sup:
        sup.wait_state("svc", "fatal")
        exits = sup.events("exited")
        assert len(exits) == len(pids(runs)) == 11
        assert sorted(str(e["pid"]) for e in exits) == sorted(pids(runs))
        assert sup.stop() == 0
