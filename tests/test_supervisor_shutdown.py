"""Shutdown: dependents first, SIGKILL after the timeout, no grandchild left, exit codes."""

import os
import signal
import time

import httpx
import psutil

from harness import SupervisorProcess, wait_until


def index_of(sup, service, state):
    for i, r in enumerate(sup.records()):
        if r.get("event") == "state" and r.get("service") == service and r.get("state") == state:
            return i
    raise AssertionError(f"{service} never reached {state}")


def test_dependents_stop_before_their_dependencies(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          db: {command: ["{py}", "{children}/sleeper.py"]}
          api: {command: ["{py}", "{children}/sleeper.py"], depends_on: [db]}
          web: {command: ["{py}", "{children}/sleeper.py"], depends_on: [api]}
          side: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        for name in ("web", "side"):
            sup.wait_state(name, "running")
        assert sup.stop() == 0
        # a service gets its stop signal only after every dependent has exited
        assert index_of(sup, "web", "stopped") < index_of(sup, "api", "stopping")
        assert index_of(sup, "api", "stopped") < index_of(sup, "db", "stopping")
        # an independent service stops in parallel with the first wave
        assert index_of(sup, "side", "stopping") < index_of(sup, "api", "stopping")


def stubborn(stop_timeout: str) -> str:
    """services.yaml with one service that ignores SIGTERM (only SIGKILL ends it)."""
    return f"""
        services:
          stubborn:
            command: ["{{py}}", "{{children}}/stubborn.py"]
            stop: {{timeout: {stop_timeout}}}
    """


def stubborn_up(sup: SupervisorProcess) -> int:
    """The stubborn child's pid, once it ignores SIGTERM."""
    pid = sup.wait_state("stubborn", "running")["pid"]
    wait_until(lambda: "stubborn up" in sup.output(), 30, "child to install its handler")
    return pid


def test_sigkill_after_stop_timeout_and_exit_code_stays_zero(tmp_path):
    with SupervisorProcess(tmp_path, stubborn("300ms")) as sup:
        pid = stubborn_up(sup)
        started = time.monotonic()
        assert sup.stop() == 0
        assert time.monotonic() - started < 5
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        last = [r for r in sup.records() if r.get("event") == "exited"][-1]
        assert last["signal"] == "SIGKILL" and last["reason"] == "stop"


def test_no_grandchild_survives_shutdown(tmp_path):
    marker = tmp_path / "grandchild.pid"
    with SupervisorProcess(tmp_path, f"""
        services:
          parent:
            command: ["{{py}}", "{{children}}/spawner.py", "{marker}"]
            stop: {{timeout: 500ms}}
    """) as sup:
        wait_until(marker.exists, 10, "grandchild pid file")
        grandchild = int(marker.read_text())
        assert psutil.pid_exists(grandchild)
        assert sup.stop() == 0
        # the grandchild ignored SIGTERM; the group SIGKILL after the timeout ended it
        wait_until(lambda: not psutil.pid_exists(grandchild)
                   or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE, 5,
                   "grandchild gone")


def test_crashed_leader_takes_its_group_with_it(tmp_path):
    marker = tmp_path / "grandchild.pid"
    with SupervisorProcess(tmp_path, f"""
        services:
          parent:
            command: ["{{py}}", "{{children}}/spawner.py", "{marker}"]
            restart: {{policy: never}}
    """) as sup:
        wait_until(marker.exists, 10, "grandchild pid file")
        grandchild = int(marker.read_text())
        os.kill(sup.record("parent", "running")["pid"], signal.SIGKILL)
        sup.wait_state("parent", "exited")
        wait_until(lambda: not psutil.pid_exists(grandchild)
                   or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE, 5,
                   "orphaned grandchild killed")
        assert sup.stop() == 0


def test_second_sigint_kills_everything_at_once(tmp_path):
    with SupervisorProcess(tmp_path, stubborn("60s")) as sup:
        stubborn_up(sup)
        started = time.monotonic()
        sup.signal(signal.SIGINT)
        sup.wait_state("stubborn", "stopping")
        sup.signal(signal.SIGINT)
        assert sup.proc.wait(10) == 0
        assert time.monotonic() - started < 10


def test_second_supervisor_on_same_state_dir_is_refused(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          a: {command: ["{py}", "{children}/sleeper.py"]}
    """) as first:
        first.wait_state("a", "running")
        second = SupervisorProcess(tmp_path, first.config_path.read_text())
        second.stdout_path = tmp_path / "second.stdout"
        with second:  # closed even when an assertion fails
            assert second.proc.wait(30) == 2
            assert "already running" in second.output()
            assert f"pid {first.proc.pid}" in second.output()
        assert first.stop() == 0
        assert not (first.state_dir / "supervisor.pid").exists()


def test_a_signal_caught_by_another_thread_still_stops_it(tmp_path):
    # The kernel may run a process's signal handler on any thread that does not block the
    # signal; an owner asleep on its queue, with no timer due for an hour, must still hear.
    import ctypes

    with SupervisorProcess(tmp_path, """
        services:
          a:
            command: ["{py}", "{children}/sleeper.py"]
            restart: {reset_after: 1h}
    """) as sup:
        sup.wait_state("a", "running")
        sup.wait_api()
        pid = sup.proc.pid

        def owner_ticks() -> int:
            with open(f"/proc/{pid}/task/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        seen: list[tuple[float, int]] = []

        def owner_asleep() -> bool:   # no CPU tick over the last 1.5 s: nothing left to do
            now, ticks = time.monotonic(), owner_ticks()
            seen.append((now, ticks))
            return any(now - t >= 1.5 and n == ticks for t, n in seen)

        wait_until(owner_asleep, 30, "the owner to go idle")
        others = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
        assert others, "the supervisor runs threads besides the owner"
        assert ctypes.CDLL(None, use_errno=True).tgkill(pid, others[0], signal.SIGTERM) == 0
        assert sup.proc.wait(10) == 0
        assert [r for r in sup.records() if r.get("event") == "shutting down"]


def test_nothing_brings_a_service_back_up_during_shutdown(tmp_path):
    # the stop timeout outlasts the HTTP calls and the SIGHUP below on a loaded machine
    with SupervisorProcess(tmp_path, stubborn("60s")) as sup:
        sup.wait_api()
        stubborn_up(sup)
        sup.signal(signal.SIGTERM)
        sup.wait_state("stubborn", "stopping")
        auth = {"X-API-Key": sup.api_key()}
        for path in ("/api/services/stubborn/start", "/api/services/stubborn/restart", "/api/reload"):
            answer = httpx.post(sup.api_url + path, headers=auth, timeout=10)
            assert answer.status_code == 409 and "shutting down" in answer.json()["error"], answer.text
        sup.signal(signal.SIGHUP)
        wait_until(lambda: [r for r in sup.records() if r.get("event") == "SIGHUP ignored"], 5,
                   "SIGHUP ignored")
        sup.signal(signal.SIGINT)  # a second signal during shutdown kills every group at once
        assert sup.proc.wait(30) == 0
        assert sup.states("stubborn").count("starting") == 1
