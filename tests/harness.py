"""Drive a real supervisor process and watch what it writes: no mocks, no sleeps."""

from __future__ import annotations

import http.server
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILDREN = Path(__file__).resolve().parent / "children"
START = ROOT / "start_system.py"
PY = sys.executable


def _port_block() -> Iterator[int]:
    """This xdist worker's ports, 2,500 of them below the kernel's ephemeral range: a port the
    OS handed out (bind to 0) and released could be handed to another worker's test before
    ours binds it, and an app stack then reaches the other test's server."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    start = 10_000 + (int(worker) % 8 if worker.isdigit() else 0) * 2_500
    offset = random.randrange(2_500)   # runs one after the other do not reuse each other's ports
    return itertools.cycle([*range(start + offset, start + 2_500), *range(start, start + offset)])


_PORTS = _port_block()


def free_port() -> int:
    """A loopback port free now, from this worker's own block."""
    for _ in range(2_500):
        port = next(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in this worker's block")


@contextmanager
def refused_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections for the whole block. Bound without
    SO_REUSEADDR and never listening: a connect() gets ECONNREFUSED and nobody else can
    bind it meanwhile, unlike a free_port() that was released and may be taken again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def stop_process(proc: subprocess.Popen[Any], grace: float = 20.0) -> None:
    """SIGTERM, up to ``grace`` seconds, then SIGKILL; reaped either way."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
               seen: Callable[[], Any] | None = None) -> Any:
    """Wait on a condition with a deadline; on timeout, fail showing what was seen."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"saw: {seen() if seen else value!r}")
        time.sleep(delay)  # back-off between checks of an external condition, not a sync point
        delay = min(delay * 2, 0.05)


def fill(config: str) -> str:
    """A test's YAML, dedented, with {py} and {children} put in: this interpreter and tests/children."""
    return textwrap.dedent(config).replace("{py}", PY).replace("{children}", str(CHILDREN))


class SupervisorProcess:
    """`python start_system.py run` on a config written into tmp_path."""

    def __init__(self, tmp_path: Path, config: str, *, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, supervisor: str = "") -> None:
        """`supervisor`: more `supervisor:` keys (YAML lines) beside the state_dir and free
        port the harness writes, unless the config has its own `supervisor:` section."""
        self.dir = tmp_path
        self.state_dir = tmp_path / "state"
        self.config_path = tmp_path / "services.yaml"
        text = fill(config)
        if "supervisor:" not in text:
            extra = "".join(f"  {line}\n" for line in textwrap.dedent(supervisor).splitlines() if line)
            text = f"supervisor:\n  state_dir: {self.state_dir}\n  port: {free_port()}\n{extra}" + text
        self.config_path.write_text(text)
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self._log_pos = 0
        self._records: list[dict[str, Any]] = []
        self.stdout_path = tmp_path / "supervisor.stdout"

    def start(self) -> SupervisorProcess:
        log = self.state_dir / "logs" / "supervisor.log"
        self._log_pos = log.stat().st_size if log.exists() else 0  # a rerun sees only its own records
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([PY, str(START), "run", "-c", str(self.config_path), *self.args],
                                     stdout=self._out, stderr=subprocess.STDOUT, env=self.env,
                                     cwd=self.dir)
        return self

    def __enter__(self) -> SupervisorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- observation --------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        path = self.state_dir / "logs" / "supervisor.log"
        try:
            with open(path, "rb") as fh:
                fh.seek(self._log_pos)
                data = fh.read()
        except FileNotFoundError:
            return self._records
        cut = data.rfind(b"\n") + 1
        self._log_pos += cut
        for line in data[:cut].splitlines():
            try:
                self._records.append(json.loads(line))
            except ValueError:
                pass
        return self._records

    def states(self, service: str) -> list[str]:
        return [r["state"] for r in self.records()
                if r.get("event") == "state" and r.get("service") == service]

    def state(self, service: str) -> str | None:
        states = self.states(service)
        return states[-1] if states else None

    def record(self, service: str, state: str) -> dict[str, Any] | None:
        for r in reversed(self.records()):
            if r.get("event") == "state" and r.get("service") == service and r.get("state") == state:
                return r
        return None

    def wait_state(self, service: str, state: str, timeout: float = 10.0, count: int = 1) -> dict:
        wait_until(lambda: self.states(service).count(state) >= count, timeout,
                   f"{service} to reach {state} x{count}", seen=lambda: self.states(service))
        return self.record(service, state)

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def events(self, name: str, service: str | None = None) -> list[dict[str, Any]]:
        """The records of event `name` so far, of `service` alone when given."""
        return [r for r in self.records()
                if r.get("event") == name and (service is None or r.get("service") == service)]

    # -- control ------------------------------------------------------------
    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if hasattr(self, "_out"):
            self._out.close()

    # -- control API (helpers for the API tests) -----------------------------
    def api_address(self) -> tuple[str, int]:
        import yaml
        sup = (yaml.safe_load(self.config_path.read_text()) or {}).get("supervisor") or {}
        return str(sup.get("host", "127.0.0.1")), int(sup.get("port", 8900))

    @property
    def api_url(self) -> str:
        host, port = self.api_address()
        return f"http://{host}:{port}"

    def configured_key(self) -> str:
        import yaml
        sup = (yaml.safe_load(self.config_path.read_text()) or {}).get("supervisor") or {}
        key = str(sup.get("api_key") or "")
        return "" if "$" in key else key   # ${SUPERVISOR_API_KEY:-}: the key file decides

    def api_key(self, timeout: float = 10.0) -> str:
        """The key the API asks of every call but /health and /metrics (SPEC §6)."""
        if configured := self.configured_key():
            return configured
        path = self.state_dir / "api_key"
        wait_until(lambda: path.exists() and path.read_text().strip(), timeout, "the api_key file")
        return path.read_text().strip()

    def auth(self) -> dict[str, str]:
        """Headers for a read: reads need the key too, unless supervisor.open_reads."""
        return {"X-API-Key": self.api_key()}

    def wait_api(self, timeout: float = 10.0) -> None:
        """Until this supervisor's control API answers /health (any status).

        The port came from free_port() and is bound only later: another supervisor may hold
        it, so the answer must come from our pid, and a bind error of ours fails at once."""
        import httpx

        def up() -> bool:
            if any(r.get("event", "").startswith("control API cannot listen") for r in self.records()):
                raise AssertionError(f"the control API could not listen on {self.api_url}: "
                                     f"{self.output()[-2000:]}")
            try:
                if httpx.get(self.api_url + "/health", timeout=1.0).status_code not in (200, 503):
                    return False
                key = self.configured_key() or _read(self.state_dir / "api_key")
                answer = httpx.get(self.api_url + "/api/diagnostics", timeout=5.0,
                                   headers={"X-API-Key": key})
                return answer.status_code == 200 and answer.json()["supervisor"]["pid"] == self.proc.pid
            except (httpx.HTTPError, ValueError, KeyError, TypeError):  # not (yet) ours, or not JSON
                return False
        wait_until(up, timeout, "the control API", seen=lambda: self.output()[-2000:])


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A test server's handler that keeps its access log off the test output."""

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server on a loopback port from the OS, for as long as the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def probe_runner() -> Iterator[tuple[Any, Any]]:
    """A real ProbeRunner on a real seam, and the queue its results are posted to."""
    import queue

    from unified_system.probes.runner import ProbeRunner
    from unified_system.proc.seam import ProcessSeam

    seam = ProcessSeam()
    posted: queue.SimpleQueue = queue.SimpleQueue()
    prober = ProbeRunner(seam, posted.put)
    try:
        yield prober, posted
    finally:
        prober.close()
        seam.close()


def heartbeat_service(pause: Path, *keys: str, name: str = "svc", every: float = 0.05,
                      argv: tuple[str, ...] = ()) -> str:
    """A `services:` section of one tests/children/heartbeat.py child, ready by sd_notify, that
    beats every `every` seconds and falls silent while `pause` exists. `keys`: more YAML lines
    of that service (heartbeat:, restart: ...); `argv`: more arguments of the child."""
    args = "".join(f', "{a}"' for a in (every, pause, *argv))
    lines = [f'command: ["{{py}}", "{{children}}/heartbeat.py"{args}]', "readiness: {notify: true}", *keys]
    return f"services:\n  {name}:\n" + "".join(f"    {line}\n" for line in lines)


def crasher_service(runs: Path, restart: str, code: int = 1, name: str = "svc") -> str:
    """A `services:` section of one tests/children/crasher.py child that exits with `code` at
    once and appends its pid to `runs` each time; `restart`: its restart mapping, as YAML."""
    return (f"services:\n  {name}:\n"
            f'    command: ["{{py}}", "{{children}}/crasher.py", "{code}", "{runs}"]\n'
            f"    restart: {restart}\n")


def tcp_service(port: int, *argv: str, probe: str = "", **keys: str) -> str:
    """A YAML flow mapping of a service running tests/children/tcp_server.py on `port` (`argv`:
    its further arguments: the seconds before it listens, "stubborn"), ready once a TCP probe of
    that same port succeeds. `probe`: more keys of the probe ("period: 50ms"); `keys`: more
    keys of the service, as YAML (stop="{timeout: 1s}")."""
    args = "".join(f', "{a}"' for a in (port, *argv))
    readiness = f"tcp: {{port: {port}}}" + (f", {probe}" if probe else "")
    more = "".join(f", {key}: {value}" for key, value in keys.items())
    return f'{{command: ["{{py}}", "{{children}}/tcp_server.py"{args}], readiness: {{{readiness}}}{more}}}'


def sleeper(depends_on: str = "") -> str:
    """A YAML flow mapping of a service running tests/children/sleeper.py, with its depends_on
    (YAML: "[db]", "{db: {condition: healthy}}") when given."""
    after = f", depends_on: {depends_on}" if depends_on else ""
    return f'{{command: ["{{py}}", "{{children}}/sleeper.py"]{after}}}'


def sleepers(*names: str) -> str:
    """A `services:` section of one tests/children/sleeper.py per name."""
    return "services:\n" + "".join(f"  {name}: {sleeper()}\n" for name in names)
