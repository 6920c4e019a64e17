"""Issue 16, item 2: every service a reload removed leaked its log's descriptor (and kept its
metric series and histories). 50 add/remove cycles must leave the supervisor as it was."""

import os

import httpx
import pytest

from harness import CHILDREN, PY, SupervisorProcess, wait_until

KEY = "release-test-key"


def config(extra: str | None) -> str:
    text = f'services:\n  keep: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}\n'
    if extra:
        # a probe and a restart give the removed service histogram and counter series
        text += (f'  {extra}: {{command: ["{PY}", "{CHILDREN}/sleeper.py"], '
                 f'readiness: {{exec: {{command: ["true"]}}, period: 200ms}}}}\n')
    return text


def reload_to(sup: SupervisorProcess, extra: str | None) -> None:
    text = sup.config_path.read_text()
    sup.config_path.write_text(text[:text.index("services:")] + config(extra))
    answer = httpx.post(sup.api_url + "/api/reload", headers={"X-API-Key": KEY}, timeout=120)
    assert answer.status_code == 200, answer.text


def listed(sup: SupervisorProcess) -> dict[str, str]:
    answer = httpx.get(sup.api_url + "/api/services", headers={"X-API-Key": KEY}, timeout=30)
    return {s["name"]: s["state"] for s in answer.json()}


def series(sup: SupervisorProcess) -> list[str]:
    text = httpx.get(sup.api_url + "/metrics", headers={"X-API-Key": KEY}, timeout=30).text
    return [line.rsplit(" ", 1)[0] for line in text.splitlines()
            if line.startswith("unified_") and not line.startswith("unified_config_reloads")]


def resources(sup: SupervisorProcess) -> tuple[int, int]:
    pid = sup.proc.pid
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


def cycle(sup: SupervisorProcess, name: str, restart: bool) -> None:
    """Add `name`, see it ready (and restarted once), then remove it and see it gone."""
    reload_to(sup, name)
    wait_until(lambda: listed(sup).get(name) == "running" and sup.record(name, "running"), 60,
               f"{name} running", seen=lambda: listed(sup))
    if not restart:
        reload_to(sup, None)
        wait_until(lambda: name not in listed(sup), 60, f"{name} removed", seen=lambda: listed(sup))
        return
    answer = httpx.post(sup.api_url + f"/api/services/{name}/restart", headers={"X-API-Key": KEY},
                        timeout=30)
    assert answer.status_code == 202, answer.text
    wait_until(lambda: len(sup.states(name)) and sup.states(name).count("running") >= 2, 60,
               f"{name} restarted", seen=lambda: sup.states(name))
    reload_to(sup, None)
    wait_until(lambda: name not in listed(sup), 60, f"{name} removed", seen=lambda: listed(sup))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_fifty_add_remove_reloads_leave_fds_threads_and_series_where_they_were(tmp_path):
    with SupervisorProcess(tmp_path, config(None), supervisor=f"api_key: {KEY}") as sup:
        sup.wait_state("keep", "running", timeout=30)
        sup.wait_api(30)
        cycle(sup, "warm", restart=True)   # threads and pools that start on first use start here
        wait_until(lambda: not any('service="warm"' in s for s in series(sup)), 30, "warm's series gone",
                   seen=lambda: series(sup))
        before_series = series(sup)
        before = resources(sup)
        for i in range(50):
            cycle(sup, f"x{i}", restart=i % 10 == 0)
        # the log is closed on the I/O thread, after the removal is answered
        wait_until(lambda: resources(sup)[0] <= before[0], 30, "fds back to where they were",
                   seen=lambda: (before, resources(sup), sorted(os.listdir(f"/proc/{sup.proc.pid}/fd"))))
        # a request thread of the API (one per request) may still be finishing
        wait_until(lambda: resources(sup)[1] <= before[1], 30, "threads back to where they were",
                   seen=lambda: (before, resources(sup)))
        assert series(sup) == before_series
        open_logs = open_files(sup.proc.pid)
        assert not [p for p in open_logs if "/logs/x" in p], open_logs
        assert sup.stop() == 0


def open_files(pid: int) -> list[str]:
    """What the process's fds name; one closed between the listing and its read is skipped
    (probe sockets open and close all the time)."""
    names = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            names.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return names


def test_a_reload_that_adds_the_first_probed_service_does_not_kill_the_supervisor(tmp_path):
    # The probe runner opened only when the first config had a probe: the owner then called
    # submit() on None and the supervisor died (found by the 50-cycle test above).
    with SupervisorProcess(tmp_path, config(None), supervisor=f"api_key: {KEY}") as sup:
        sup.wait_state("keep", "running", timeout=30)
        sup.wait_api(30)
        reload_to(sup, "probed")
        wait_until(lambda: listed(sup).get("probed") == "running", 60, "probed running",
                   seen=lambda: (sup.proc.poll(), listed(sup) if sup.proc.poll() is None else None))
        assert sup.stop() == 0
