"""Held sockets: the supervisor binds, children inherit fd 3; restarts are rolling and refuse
no connection."""

import http.client
import os
import signal
import socket
import threading
import time

import httpx
import psutil

from harness import CHILDREN, PY, SupervisorProcess, free_port, wait_until


def get(port, path="/"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        conn.close()


class Load(threading.Thread):
    """A closed-loop client, bounded in count and time."""

    def __init__(self, port, max_requests=20000, max_seconds=30.0):
        super().__init__(daemon=True)
        self.port, self.max_requests, self.max_seconds = port, max_requests, max_seconds
        self.ok, self.failed, self.pids = 0, [], set()
        self.halt = threading.Event()
        self.path = "/"

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        while not self.halt.is_set() and self.ok + len(self.failed) < self.max_requests \
                and time.monotonic() < deadline:
            try:
                status, pid = get(self.port, self.path)
                if status == 200:
                    self.ok += 1
                    self.pids.add(pid)
                else:
                    self.failed.append(status)
            except OSError as exc:
                self.failed.append(repr(exc))


def web(port: int, *extra: str, listen: str = "") -> str:
    """services.yaml with one `web`: held_http.py on a held socket, ready by sd_notify."""
    lines = "".join(f"            {line}\n" for line in extra)
    return f"""
        services:
          web:
            command: ["{{py}}", "{{children}}/held_http.py"]
            listen: [{{port: {port}{listen}}}]
            readiness: {{notify: true}}
{lines}    """


def can_bind(port: int) -> bool:
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError:
        return False
    return True


def rolled(sup):
    return [r for r in sup.records()
            if r.get("event") == "rolling restart: new incarnation ready, stopping the old one"]


def test_child_gets_fd3_with_its_own_listen_pid(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, web(port, listen=", name: http")) as sup:
        pid = sup.wait_state("web", "running")["pid"]
        wait_until(lambda: "serving" in sup.output(), 10, "serving line")
        assert f"serving on fd 3 pid={pid} LISTEN_PID={pid}" in sup.output()
        sockets = [fd for fd in os.listdir(f"/proc/{pid}/fd")  # before any connection
                   if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")]
        assert sockets == ["3"]  # the shim closed the inherited originals
        assert get(port) == (200, str(pid))
        assert sup.stop() == 0


def test_rolling_restarts_refuse_no_connection(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, web(port, "instances: 2")) as sup:
        wait_until(lambda: sup.states("web").count("running") >= 2, 15, "two instances")
        load = Load(port)
        load.start()
        try:
            wait_until(lambda: load.ok > 20, 10, "traffic")
            base = sup.config_path.read_text()
            for round_ in range(3):   # each reload changes the definition: a rolling restart
                sup.config_path.write_text(base.replace(
                    "instances: 2", f"instances: 2\n    env: {{ROUND: '{round_}'}}"))
                sup.signal(signal.SIGHUP)
                wait_until(lambda r=round_: len(rolled(sup)) >= 2 * (r + 1), 30, f"round {round_}",
                           seen=lambda: sup.states("web"))
                wait_until(lambda r=round_: sup.states("web").count("stopped") >= 2 * (r + 1), 30,
                           "the old incarnations to stop", seen=lambda: sup.states("web"))
        finally:
            load.halt.set()
            load.join(10)
        assert load.failed == [], load.failed[:5]
        assert load.ok > 100 and len(load.pids) >= 4
        assert sup.stop() == 0


def test_a_rolling_restart_that_drops_the_heartbeat_keeps_the_owner_up(tmp_path):
    # In a rolling restart the old incarnation runs on, under the new definition, until the
    # new one is ready (here a second later): its heartbeat timer must find no heartbeat.
    port = free_port()
    with SupervisorProcess(tmp_path, web(port, "heartbeat: {timeout: 100ms}")) as sup:
        sup.wait_state("web", "running")
        text = sup.config_path.read_text()
        sup.config_path.write_text(text.replace("heartbeat: {timeout: 100ms}",
                                                "env: {READY_DELAY: '1'}"))
        sup.signal(signal.SIGHUP)
        wait_until(lambda: rolled(sup), 30, "the rolling restart", seen=lambda: sup.states("web"))
        assert sup.stop() == 0


def test_a_reload_refuses_a_busy_new_port_not_its_own_and_frees_a_removed_ones(tmp_path):
    port, other_port = free_port(), free_port()
    with SupervisorProcess(tmp_path, web(port)) as sup:
        pid = sup.wait_state("web", "running")["pid"]
        text = sup.config_path.read_text()
        sup.config_path.write_text(text + f"  other:\n    command: [{PY}, {CHILDREN}/sleeper.py]\n"
                                          f"    listen: [{{port: {other_port}}}]\n")
        outsider = socket.create_server(("127.0.0.1", other_port))
        try:
            sup.signal(signal.SIGHUP)
            refused = wait_until(lambda: [r for r in sup.records()
                                          if r.get("event", "").startswith("reload refused")], 20, "refusal")
        finally:
            outsider.close()
        # web's port is busy too, held by the supervisor for web itself: not an error
        (error,) = refused[0]["errors"]
        assert f"services.other.listen[0].port: port {other_port} on 127.0.0.1 is in use" in error

        sup.signal(signal.SIGHUP)  # the same file, with the port free now
        sup.wait_state("other", "running", timeout=20)
        sup.config_path.write_text(text)  # other removed: its port is let go
        sup.signal(signal.SIGHUP)
        wait_until(lambda: can_bind(other_port), 20, f"port {other_port} let go")
        assert sup.wait_state("web", "running")["pid"] == pid
        assert sup.stop() == 0


def test_a_reload_during_a_rolling_restart_reaches_the_new_incarnation(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, web(port, "env: {READY_DELAY: '1', TAG: a}")) as sup:
        sup.wait_api()
        old = sup.wait_state("web", "running", timeout=30)["pid"]
        answer = httpx.post(f"{sup.api_url}/api/services/web/restart",
                            headers={"X-API-Key": sup.api_key()}, timeout=10)
        assert answer.status_code == 202, answer.text
        wait_until(lambda: len(sup.states("web")) > 2, 10, "the new incarnation starting")
        text = sup.config_path.read_text()
        sup.config_path.write_text(text.replace("TAG: a", "TAG: b"))  # while it is not ready
        sup.signal(signal.SIGHUP)

        def serving() -> list[str]:
            tags = []
            for pid in held_http_pids(sup):
                try:
                    tags.append(psutil.Process(pid).environ().get("TAG", ""))
                except psutil.NoSuchProcess:  # gone between the listing and the reading
                    pass
            return tags

        wait_until(lambda: serving() == ["b"], 30, "one web, with TAG b", seen=serving)
        # the old one, told to stop once the new one was ready, may still be finishing
        wait_until(lambda: gone(old), 30, "the old incarnation gone")
        assert sup.stop() == 0


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def held_http_pids(sup) -> list[int]:
    pids = []
    for child in psutil.Process(sup.proc.pid).children():
        try:
            if any("held_http.py" in part for part in child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:  # exited since the listing (the old incarnation, stopping)
            pass
    return pids


def test_a_failing_liveness_probe_restarts_plainly_with_backoff_not_rolling(tmp_path):
    # Rolling would keep the failing process serving; it is replaced as a crash is.
    port = free_port()
    with SupervisorProcess(tmp_path, web(port, "liveness: {exec: {command: [\"false\"]}, period: 100ms, "
                                               "failure_threshold: 1}",
                                         "restart: {backoff: {initial: 200ms}}")) as sup:
        sup.wait_state("web", "backoff", timeout=30)
        assert not [r for r in sup.records() if r.get("event", "").startswith("rolling restart")]
        states = sup.states("web")
        assert states[states.index("stopping") + 1] == "backoff"  # stopped first, then backs off
        assert sup.stop() == 0
