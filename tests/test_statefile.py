"""The supervisor's own checkpoint: kill -9 it, start it again, nothing lost, nothing doubled."""

import json
import os
import signal

import psutil

from harness import SupervisorProcess, crasher_service, free_port, wait_until


def saved(sup) -> dict:
    """state.json as last written (it is first written just after the first spawns)."""
    path = sup.state_dir / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"services": {}}


def gone(pid):
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_kill9_supervisor_then_restart_cleans_leftovers_and_keeps_history(tmp_path):
    port = free_port()
    config = f"""
        services:
          held:
            command: ["{{py}}", "{{children}}/tcp_server.py", "{port}", "0", "stubborn"]
            readiness: {{tcp: {{port: {port}}}, period: 50ms}}
            stop: {{timeout: 10s}}   # the guard SIGKILLs it after this: the next start comes first
            restart: {{backoff: {{initial: 0}}}}
          plain:
            command: ["{{py}}", "{{children}}/sleeper.py"]
    """
    sup = SupervisorProcess(tmp_path, config).start()
    try:
        held = sup.wait_state("held", "running")["pid"]
        plain = sup.wait_state("plain", "running")["pid"]
        psutil.Process(held).send_signal(signal.SIGKILL)      # one crash, so restarts == 1
        held = sup.wait_state("held", "running", count=2)["pid"]
        wait_until(lambda: saved(sup)["services"].get("held", {}).get("restarts") == 1, 5,
                   "state.json to record the restart")
        sup.proc.kill()                                        # the supervisor dies hard
        sup.proc.wait(5)
        # PR_SET_PDEATHSIG: the plain child got SIGTERM with its parent; the stubborn one ignored it
        wait_until(lambda: gone(plain), 5, "the plain child to die with its supervisor")
        assert not gone(held)
    finally:
        sup.close()

    with SupervisorProcess(tmp_path, config) as again:
        new = again.wait_state("held", "running", timeout=60)["pid"]       # its port was free: no duplicate
        assert new != held and gone(held)
        assert [r for r in again.records() if r.get("event") ==
                "stopping a process left by a previous supervisor"][0]["pid"] == held
        state = json.loads((again.state_dir / "state.json").read_text())
        assert state["services"]["held"]["restarts"] >= 1
        assert again.stop() == 0


def test_corrupt_state_json_is_moved_aside(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text('{"format": 1, "services": [broken')
    with SupervisorProcess(tmp_path, """
        services:
          a: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        sup.wait_state("a", "running")
        assert [r for r in sup.records() if "corrupt" in r.get("event", "")]
        assert list((tmp_path / "state").glob("state.json.corrupt-*"))
        assert sup.stop() == 0
    assert json.loads((tmp_path / "state" / "state.json").read_text())["format"] == 1


def test_open_circuit_survives_a_supervisor_restart(tmp_path):
    runs = tmp_path / "runs"
    config = crasher_service(runs, "{backoff: {initial: 0}, max_restarts: 1, cooldown: 1h}", name="bad")
    with SupervisorProcess(tmp_path, config) as sup:
        sup.wait_state("bad", "fatal")
        assert sup.stop() == 0
    count = len(runs.read_text().split())
    with SupervisorProcess(tmp_path, config) as sup:
        rec = sup.wait_state("bad", "fatal")
        assert "restored" in rec["note"]
        assert sup.stop() == 0
    assert len(runs.read_text().split()) == count   # not started again while the circuit is open


def test_each_instance_gets_back_its_own_restart_history(tmp_path):
    runs = tmp_path / "runs"
    config = f"""
        services:
          svc:
            command: ["{{py}}", "{{children}}/flaky.py", "{runs}", "0,0,600"]
            instances: 2
            restart: {{backoff: {{initial: 0}}, max_restarts: 2, window: 10m}}
    """
    with SupervisorProcess(tmp_path, config) as sup:  # the first two runs crash: 1 restart each
        wait_until(lambda: runs.exists() and len(runs.read_text().split()) == 4, 20, "four runs")
        sup.wait_state("svc", "running", count=4)
        assert sup.stop() == 0
    with SupervisorProcess(tmp_path, config) as sup:
        pid = sup.wait_state("svc", "running")["pid"]
        wait_until(lambda: len(runs.read_text().split()) == 6, 20, "both up again")
        os.kill(pid, signal.SIGKILL)  # 1 restored + this one: within the budget of 2, not 2 + 1
        wait_until(lambda: len(runs.read_text().split()) == 7, 20, "the restart",
                   seen=lambda: sup.states("svc"))
        assert "fatal" not in sup.states("svc")
        assert sup.stop() == 0


def test_without_a_parent_death_signal_children_outlive_a_killed_supervisor_until_next_start(tmp_path):
    config = f"""
        supervisor: {{state_dir: {tmp_path}/state, port: {free_port()}, parent_death_signal: null}}
        services:
          plain:
            command: ["{{py}}", "{{children}}/sleeper.py"]
    """
    sup = SupervisorProcess(tmp_path, config).start()
    try:
        plain = sup.wait_state("plain", "running")["pid"]
        wait_until(lambda: saved(sup)["services"].get("plain", {}).get("instances"), 5,
                   "state.json to record the child")
        sup.proc.kill()
        sup.proc.wait(5)
        assert not gone(plain)   # no PR_SET_PDEATHSIG: it runs on, as under supervisord or PM2
    finally:
        sup.close()
    with SupervisorProcess(tmp_path, config) as again:    # the next start stops it first
        assert again.wait_state("plain", "running")["pid"] != plain
        wait_until(lambda: gone(plain), 5, "the leftover to be stopped")
        assert again.stop() == 0
