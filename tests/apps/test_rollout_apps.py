"""Rolling restarts with the programs users bring, under real `wrk` (Debian package): the
application's backend and real gunicorn on a held socket lose no request, and a release
that is broken at import is never let in: the old process keeps serving."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from test_api_sse import EventReader

from harness import CHILDREN, PY, SupervisorProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
WRK = shutil.which("wrk")
PROVEN = "rolling restart: new incarnation ready, stopping the old one"
ABORTED = "rolling restart aborted: the new incarnation failed; the old one keeps serving"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(WRK is None, reason="wrk is not installed (.ci/run installs it)")]


class Wrk:
    """wrk on keep-alive connections, bounded at `seconds`; leaving the block ends it with
    SIGINT, on which it reports. `failed` counts every failure: connect, read, write and
    timeout errors and non-2xx answers."""

    def __init__(self, url: str, connections: int = 20, seconds: int = 180) -> None:
        self.proc = subprocess.Popen([WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                                      url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.report, self.requests, self.failed = "", 0, -1

    def __enter__(self) -> Wrk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_connected(self, timeout: float = 60) -> None:
        """Until wrk holds a connection; if it has exited instead, fail with its report."""
        def connected() -> object:
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"wrk exited with {self.proc.returncode} before connecting:\n{self.report}")
            return psutil.Process(self.proc.pid).net_connections(kind="tcp")
        wait_until(connected, timeout, "wrk connected")

    def stop(self) -> None:
        if self.failed >= 0:
            return   # stopped and counted already
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.report = self.proc.communicate(timeout=60)[0]
        found = re.search(r"(\d+) requests in", self.report)
        self.requests = int(found.group(1)) if found else 0
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                           self.report)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", self.report)
        self.failed = sum(map(int, errors.groups())) if errors else 0
        self.failed += int(non2xx.group(1)) if non2xx else 0


def backend(port: int, tmp_path: Path) -> str:
    """The application's backend on a held socket, probed over http as services.yaml does:
    on the shared port, the probe may be answered by the old process."""
    return f"""
        services:
          backend:
            command: ["{{py}}", "-m", "backend"]
            cwd: {ROOT}/services/backend
            env: {{PYTHONPATH: "{ROOT}/src", DATA_DIR: "{tmp_path}/data", LOG_LEVEL: WARNING}}
            listen: [{{port: {port}, name: http}}]
            readiness: {{http: {{url: "http://127.0.0.1:{port}/health"}}, start_interval: 100ms}}
            stop: {{timeout: 15s}}
    """


def gunicorn(port: int) -> str:
    """Real gunicorn (sync workers) on a held socket: LISTEN_FDS, and READY=1 from its arbiter."""
    return f"""
        services:
          web:
            command: ["{{py}}", "-m", "gunicorn", "-w", "2", "--graceful-timeout", "10", "wsgi_app:app"]
            cwd: {{children}}
            env: {{BROKEN: '0'}}
            listen: [{{port: {port}, name: http}}]
            readiness: {{notify: true}}
            stop: {{timeout: 15s}}
    """


def api(sup: SupervisorProcess, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"{sup.api_url}{path}", headers={"X-API-Key": sup.api_key()}, timeout=10)


def count(sup: SupervisorProcess, event: str) -> int:
    return sum(1 for r in sup.records() if r.get("event") == event)


def restarts_under_wrk(sup: SupervisorProcess, service: str, url: str, rounds: int = 5) -> Wrk:
    """`rounds` restarts through the API under wrk, each waited out: the new incarnation
    proven, the old one stopped."""
    with Wrk(url) as wrk:
        wrk.wait_connected()
        for i in range(rounds):
            assert api(sup, "POST", f"/api/services/{service}/restart").status_code == 202
            wait_until(lambda i=i: count(sup, PROVEN) > i, 90, f"rollout {i} proven",
                       seen=lambda: sup.states(service))
            wait_until(lambda i=i: sup.states(service).count("stopped") > i, 60, f"old incarnation {i} stopped",
                       seen=lambda: sup.states(service))
        assert not count(sup, ABORTED)
    return wrk


def test_backend_loses_no_request_in_five_rolling_restarts_under_wrk(tmp_path):
    pytest.importorskip("fastapi")
    port = free_port()
    with SupervisorProcess(tmp_path, backend(port, tmp_path)) as sup:
        sup.wait_state("backend", "running", timeout=60)
        sup.wait_api(30)
        wrk = restarts_under_wrk(sup, "backend", f"http://127.0.0.1:{port}/health")
        assert wrk.failed == 0, wrk.report
        assert wrk.requests > 500, wrk.report
        # LAST EXIT: the old incarnation's real exit (a graceful 0), not "manual (?)"
        last = api(sup, "GET", "/api/services/backend").json()["last_exit"]
        assert (last["reason"], last["code"], last["signal"]) == ("manual", 0, None), last
        status = subprocess.run([PY, str(ROOT / "start_system.py"), "status", "-c", str(sup.config_path)],
                                capture_output=True, text=True, timeout=30)
        assert "manual (code 0)" in status.stdout and "(?)" not in status.stdout, status.stdout
        assert sup.stop() == 0


def test_gunicorn_loses_no_request_in_five_rolling_restarts_under_wrk(tmp_path):
    pytest.importorskip("gunicorn")
    port = free_port()
    with SupervisorProcess(tmp_path, gunicorn(port)) as sup:
        sup.wait_state("web", "running", timeout=60)
        sup.wait_api(30)
        wrk = restarts_under_wrk(sup, "web", f"http://127.0.0.1:{port}/")
        assert wrk.failed == 0, wrk.report
        assert wrk.requests > 500, wrk.report
        assert sup.stop() == 0


def assert_old_keeps_serving(sup: SupervisorProcess, service: str, old: int, reader: EventReader,
                             wrk: Wrk) -> None:
    event = reader.wait_for(lambda name, data: name == "rollout" and data.get("result") == "failed", 90)
    assert "rollout failed" in event[1]["message"] and event[1]["pid"] == old, event
    wrk.stop()
    assert wrk.failed == 0, wrk.report
    assert wrk.requests > 100, wrk.report
    obj = api(sup, "GET", f"/api/services/{service}").json()
    assert (obj["pid"], obj["state"], obj["ready"]) == (old, "running", True), obj
    assert obj["last_exit"]["reason"] == "rollout failed", obj["last_exit"]
    assert psutil.pid_exists(old)
    assert not [r for r in sup.records() if r.get("event") == "state" and r.get("pid") == old
                and r.get("state") in ("stopping", "stopped")]   # never signalled


def broken_reload_under_wrk(sup: SupervisorProcess, service: str, url: str, broken: Callable[[str], str]) -> int:
    """Reload `service` into `broken(config text)`, a release broken at import, under wrk on
    `url`; the old process keeps serving (assert_old_keeps_serving). Returns its pid."""
    old = sup.wait_state(service, "running", timeout=60)["pid"]
    sup.wait_api(30)
    reader = EventReader(f"{sup.api_url}/api/events", sup.api_key())
    try:
        with Wrk(url) as wrk:
            wrk.wait_connected()
            sup.config_path.write_text(broken(sup.config_path.read_text()))
            sup.signal(signal.SIGHUP)
            assert_old_keeps_serving(sup, service, old, reader, wrk)
    finally:
        reader.close()
    return old


def test_a_reload_to_a_release_that_exits_at_import_keeps_the_old_backend_serving(tmp_path):
    # The http probe on the shared port is answered by the OLD process, so the new one looks
    # ready at once: min_ready must catch its exit before the old one is signalled.
    pytest.importorskip("fastapi")
    port = free_port()
    with SupervisorProcess(tmp_path, backend(port, tmp_path)) as sup:
        old = broken_reload_under_wrk(
            sup, "backend", f"http://127.0.0.1:{port}/health",
            lambda text: text.replace('"-m", "backend"', f'"{CHILDREN}/broken_release.py"'))
        # the reload is rolled back for the service, without touching the old process
        wait_until(lambda: [r for r in sup.events("reload: rolling back a changed service")
                            if "rollout failed" in r.get("reason", "")],
                   30, "the reload rolled back", seen=lambda: sup.states("backend"))
        assert api(sup, "GET", "/api/services/backend").json()["pid"] == old
        assert sup.stop() == 0


def test_gunicorn_with_an_app_broken_at_import_is_never_let_in(tmp_path):
    # gunicorn's arbiter sends READY=1 before its workers load the app.
    pytest.importorskip("gunicorn")
    port = free_port()
    with SupervisorProcess(tmp_path, gunicorn(port)) as sup:
        broken_reload_under_wrk(sup, "web", f"http://127.0.0.1:{port}/",
                                lambda text: text.replace("BROKEN: '0'", "BROKEN: '1'"))
        assert sup.stop() == 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
