"""Floods of connections and running out of descriptors (issue 14, item 2).

Threat: anyone who reaches the control API (or the gateway in front of it) opens hundreds of
event streams and slow-header connections. Seen before the fix, under `ulimit -n 256`: 248
supervisor threads, a service `fatal` for ever with `[Errno 24] Too many open files`,
/health 503, state.json not written, the accept loop spinning at 91 % of a core.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from harness import PY, START, SupervisorProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
NODE_SERVER = ROOT / "services" / "node-server"
STREAMS = 300          # event-stream connections, straight to the API and again through the gateway
SLOW_HEADS = 200       # clients that send a header line a second and never finish
FLOOD = 14.0           # seconds: longer than the API's 10 s whole-request deadline
THREADS_MAX = 90       # the supervisor's threads during the flood (248 before the fix)


class Limited(SupervisorProcess):
    """The supervisor started under an open-files limit, as `ulimit -n` would set it."""

    def __init__(self, *args, nofile: tuple[int, int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.nofile = nofile

    def start(self) -> Limited:
        import subprocess

        log = self.state_dir / "logs" / "supervisor.log"
        self._log_pos = log.stat().st_size if log.exists() else 0
        self._out = open(self.stdout_path, "wb")
        nofile = self.nofile
        self.proc = subprocess.Popen(
            [PY, str(START), "run", "-c", str(self.config_path), *self.args],
            stdout=self._out, stderr=subprocess.STDOUT, env=self.env, cwd=self.dir,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, nofile))
        return self


def answers(url: str, key: str, path: str) -> httpx.Response | None:
    try:
        return httpx.get(url + path, headers={"X-API-Key": key}, timeout=3.0)
    except httpx.HTTPError:
        return None


def all_running(sup: SupervisorProcess, key: str) -> dict[str, str] | None:
    """{name: state} when /health is 200 and every service runs, else None."""
    health = answers(sup.api_url, key, "/health")
    services = answers(sup.api_url, key, "/api/services")
    if health is None or services is None or health.status_code != 200 or services.status_code != 200:
        return None
    states = {s["name"]: s["state"] for s in services.json()}
    return states if set(states.values()) == {"running"} else None


def seen(sup: SupervisorProcess, key: str) -> object:
    health = answers(sup.api_url, key, "/health")
    return health.text[:500] if health is not None else sup.output()[-1500:]


class Flood:
    """Client sockets on one selector thread, all non-blocking: event streams that read
    what they get, and slow heads that add a header line a second and never finish."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.sel = selectors.DefaultSelector()
        self.heads: dict[str, bytearray] = {}
        self.first_lines: dict[str, list[bytes]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._slow: list[socket.socket] = []

    def streams(self, tag: str, port: int, path: str, count: int) -> None:
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {self.key}\r\n"
                   "Accept: text/event-stream\r\n\r\n").encode()
        self.first_lines.setdefault(tag, [])
        for _ in range(count):
            self._connect(port, {"tag": tag, "send": request, "got": bytearray()})

    def slow_heads(self, port: int, count: int) -> None:
        for _ in range(count):
            self._connect(port, {"tag": "slow", "send": b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                 "got": bytearray()})

    def _connect(self, port: int, state: dict) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        state["sock"] = sock
        if state["tag"] == "slow":
            self._slow.append(sock)
        self.sel.register(sock, selectors.EVENT_WRITE | selectors.EVENT_READ, state)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        next_line = time.monotonic() + 1.0
        while not self._stop.is_set():
            for key, events in self.sel.select(0.2):
                state, sock = key.data, key.fileobj
                try:
                    if events & selectors.EVENT_WRITE and state["send"]:
                        sent = sock.send(state["send"])
                        state["send"] = state["send"][sent:]
                        if not state["send"]:
                            self.sel.modify(sock, selectors.EVENT_READ, state)
                    if events & selectors.EVENT_READ:
                        chunk = sock.recv(65536)
                        if not chunk:
                            raise ConnectionResetError
                        if len(state["got"]) < 256:
                            state["got"] += chunk
                            if b"\r\n" in state["got"] and "line" not in state:
                                state["line"] = bytes(state["got"]).split(b"\r\n", 1)[0]
                                self.first_lines.setdefault(state["tag"], []).append(
                                    bytes(state["got"]))
                except OSError:
                    self.sel.unregister(sock)
                    sock.close()
            if time.monotonic() >= next_line:   # the slowloris' next header line
                next_line += 1.0
                for sock in self._slow:
                    try:
                        sock.send(b"X-Slow: 1\r\n")
                    except OSError:
                        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        for sock in self._slow:
            sock.close()
        self.sel.close()

    def statuses(self, tag: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for got in self.first_lines.get(tag, []):
            status = got.split(b"\r\n", 1)[0].decode(errors="replace")
            out[status] = out.get(status, 0) + 1
        return out


def config(tmp_path: Path, marker: Path, gateway_port: int | None, api_port: int) -> str:
    gateway = "" if gateway_port is None else f"""
          gateway:
            command: ["node", "src/index.js"]
            cwd: {NODE_SERVER}
            inherit_env: [PATH, HOME]
            env: {{PORT: "{gateway_port}", SUPERVISOR_PORT: "{api_port}", PYTHON_PORT: "1",
                   RATE_LIMIT_PER_MINUTE: "1000000"}}
            readiness: {{http: {{url: "http://127.0.0.1:{gateway_port}/health"}}, period: 200ms}}
            stop: {{timeout: 5s}}"""
    return f"""
        supervisor:
          state_dir: {tmp_path / "state"}
          port: {api_port}
        services:
          worker:
            command: ["{{py}}", "{{children}}/sleeper.py"]
          churn:
            command: ["{{py}}", "{{children}}/restless.py", "{marker}", "0.4"]
            restart: {{policy: always, backoff: {{initial: 100ms, max: 200ms}},
                       max_restarts: 1000, window: 60s}}{gateway}
    """


def threads_of(pid: int) -> int:
    try:
        return psutil.Process(pid).num_threads()
    except psutil.Error:
        return 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_under_ulimit_256_a_flood_of_streams_and_slow_heads_leaves_every_service_running(tmp_path):
    if not (NODE_SERVER / "node_modules").exists() or not shutil.which("node"):
        pytest.skip("node-server dependencies are not installed (npm ci)")
    marker = tmp_path / "churning"
    marker.write_text("")
    gateway_port, api_port = free_port(), free_port()
    with Limited(tmp_path, config(tmp_path, marker, gateway_port, api_port),
                 nofile=(256, 256)) as sup:
        key = sup.api_key(30)
        wait_until(lambda: all_running(sup, key) is not None or
                   (answers(sup.api_url, key, "/api/services") or None), 60, "the API and services",
                   seen=lambda: seen(sup, key))
        sup.wait_state("gateway", "running", timeout=60)
        flood = Flood(key)
        started = time.time()
        flood.streams("direct", api_port, "/api/events", STREAMS)
        flood.streams("gateway", gateway_port, "/supervisor/api/events", STREAMS)
        flood.slow_heads(api_port, SLOW_HEADS)
        flood.start()
        threads: list[int] = []
        probes: list[int | None] = []   # a prompt client's /health during the flood
        try:
            end = time.monotonic() + FLOOD
            while time.monotonic() < end:
                threads.append(threads_of(sup.proc.pid))
                if len(threads) % 4 == 0:
                    answer = answers(sup.api_url, key, "/health")
                    probes.append(None if answer is None or "services" not in answer.text
                                  else answer.status_code)
                time.sleep(0.25)  # a sampling period, not a synchronisation
        finally:
            flood.close()
            marker.unlink()
        ended = time.monotonic()
        states = wait_until(lambda: all_running(sup, key), 10.0,
                            "/health 200 and every service running after the flood",
                            seen=lambda: seen(sup, key))
        recovered = time.monotonic() - ended
        direct = flood.statuses("direct")
        print(f"threads during the flood: max {max(threads)}; direct streams: {direct}; "
              f"through the gateway: {flood.statuses('gateway')}; recovered in {recovered:.2f}s; "
              f"/health during the flood: {probes}")
        assert max(threads) <= THREADS_MAX, threads
        # Slow heads past the connection limit make room for a prompt client; they never lock it out.
        assert sum(p is not None for p in probes) >= len(probes) / 2, probes
        assert "fatal" not in sup.states("churn"), sup.states("churn")
        assert sup.states("churn").count("running") >= 2, "churn was never respawned during the flood"
        assert set(states) == {"worker", "churn", "gateway"}
        # Past the caps the client is told to come back, not left hanging or reset.
        gateway = flood.statuses("gateway")
        assert direct.get("HTTP/1.1 200 OK", 0) + gateway.get("HTTP/1.1 200 OK", 0) <= 32, (direct, gateway)
        refused = [got for got in flood.first_lines["direct"] if got.startswith(b"HTTP/1.1 503")]
        assert refused and all(b"Retry-After:" in got for got in refused), direct
        state = json.loads((sup.state_dir / "state.json").read_text())
        assert os.stat(sup.state_dir / "state.json").st_mtime >= started, state


def test_a_spawn_out_of_descriptors_backs_off_and_the_accept_loop_rests(tmp_path):
    marker = tmp_path / "churning"
    marker.write_text("")
    api_port = free_port()
    with SupervisorProcess(tmp_path, config(tmp_path, marker, None, api_port)) as sup:
        key = sup.api_key(30)
        wait_until(lambda: answers(sup.api_url, key, "/health"), 30, "the API")
        sup.wait_state("churn", "running", timeout=30)
        pid = sup.proc.pid
        proc = psutil.Process(pid)
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        try:
            # Not one descriptor more: a new one must have a number below the limit, and 0-2
            # are always taken, so the next spawn (pipe2, fork's pipe, pidfd) and accept fail.
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, hard))
            waiting = socket.create_connection(("127.0.0.1", api_port), timeout=30)
            waiting.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            # The waiting connection stays readable in the backlog: accept must rest, not spin.
            cpu_before, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
            wait_until(lambda: time.monotonic() - t0 >= 2.0, 5, "two seconds of scarcity")
            busy = (sum(proc.cpu_times()[:2]) - cpu_before) / (time.monotonic() - t0)
            wait_until(lambda: any(r.get("event") == "state" and r.get("service") == "churn" and
                                   r.get("reason") == "resources" for r in sup.records()),
                       30, "churn's spawn to find descriptors scarce",
                       seen=lambda: sup.states("churn")[-10:])
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        marker.unlink()
        sup.wait_state("churn", "running", timeout=10, count=sup.states("churn").count("running") + 1)
        assert "fatal" not in sup.states("churn"), sup.states("churn")
        waiting.settimeout(10)
        assert waiting.recv(100).startswith(b"HTTP/1.1 200"), "the connection that waited"
        waiting.close()
        print(f"the supervisor's CPU while out of descriptors: {busy:.1%} of a core")
        assert busy < 0.1, f"the supervisor used {busy:.0%} of a core while out of descriptors"


def test_the_soft_open_files_limit_is_raised_to_the_hard_one_at_start(tmp_path):
    with Limited(tmp_path, """
        services:
          worker:
            command: ["{py}", "{children}/sleeper.py"]
    """, nofile=(256, 4096)) as sup:
        sup.wait_state("worker", "running", timeout=30)
        assert psutil.Process(sup.proc.pid).rlimit(psutil.RLIMIT_NOFILE) == (4096, 4096)
