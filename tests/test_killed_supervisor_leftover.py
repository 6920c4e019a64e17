"""Issue 16, item 4: a SIGKILLed supervisor's leftover blocked the next start.

A child that ignores SIGTERM and holds a `listen` port outlived the supervisor (the guard
only sent SIGTERM), and the next `run` refused to start: "port ... is in use".
"""

import json
import signal

import psutil
import pytest

from harness import SupervisorProcess, free_port, wait_until


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stubborn(port: int, timeout: str) -> str:
    # stubborn.py ignores SIGTERM; it holds the listen socket it inherited as fd 3.
    return f"""
        services:
          web:
            command: ["{{py}}", "{{children}}/stubborn.py"]
            listen: [{{port: {port}, host: 127.0.0.1}}]
            stop: {{timeout: {timeout}}}
    """


def up(sup: SupervisorProcess) -> int:
    """web's pid once stubborn.py ignores SIGTERM (it says so; before, the shim's exec)."""
    pid = sup.wait_state("web", "running", timeout=30)["pid"]
    log = sup.state_dir / "logs" / "web.log"
    wait_until(lambda: log.exists() and b"stubborn up" in log.read_bytes(), 30, "stubborn.py up")
    return int(pid)


def recorded_pid(sup: SupervisorProcess) -> int:
    """The pid state.json lists for web (a restart finds its leftovers there)."""
    path = sup.state_dir / "state.json"

    def listed() -> int | None:
        try:
            instances = json.loads(path.read_text())["services"]["web"]["instances"]
        except (OSError, ValueError, KeyError):
            return None
        return instances[0]["pid"] if instances else None

    return int(wait_until(listed, 15, "state.json to list web's pid"))


def test_the_guard_sigkills_a_child_that_ignores_sigterm_after_its_stop_timeout(tmp_path):
    sup = SupervisorProcess(tmp_path, stubborn(free_port(), "1s")).start()
    try:
        pid = up(sup)
        sup.proc.kill()
        sup.proc.wait(10)
        # SIGTERM is ignored; SIGKILL follows after stop.timeout (1 s). Before: never.
        wait_until(lambda: gone(pid), 20, "the stubborn child to be SIGKILLed by the guard")
    finally:
        sup.close()


@pytest.mark.parametrize("guard", ["SIGTERM", "null"], ids=["guarded", "unguarded"])
def test_a_restart_right_after_sigkill_stops_the_leftover_then_takes_its_port(tmp_path, guard):
    port = free_port()
    config = stubborn(port, "5s")
    first = SupervisorProcess(tmp_path, config, supervisor=f"parent_death_signal: {guard}").start()
    second = None
    try:
        old = up(first)
        assert recorded_pid(first) == old
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        assert not gone(old), "the leftover should still run when the next start begins"
        second = SupervisorProcess(tmp_path, config, supervisor=f"parent_death_signal: {guard}").start()
        new = wait_until(lambda: second.proc.poll() is None and (second.record("web", "running") or {}).get("pid"),
                         60, "web running under the new supervisor",
                         seen=lambda: (second.proc.poll(), second.output()[-2000:]))
        assert new != old
        assert gone(old), "the leftover must be stopped before the new start"
        assert "stopping a process left by a previous supervisor" in second.output()
        assert "in use" not in second.output()
        assert second.stop(60) == 0
    finally:
        first.close()
        if second is not None:
            second.close()
