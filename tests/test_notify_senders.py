"""sd_notify from the programs users bring, with the supervisor run as an ordinary user.

As root, `systemd-notify` puts its parent's pid into SCM_CREDENTIALS, so its messages look
like the service's main process. As any other user the kernel refuses that, and the pid is
systemd-notify's own: a process gone a few milliseconds later. Its READY=1 and every
WATCHDOG=1 were dropped (issue 15), which only a supervisor run as an ordinary user shows.

The supervisor runs as `nobody` through setpriv. This machine's Python lives under /root
(mode 0700), which nobody cannot enter, so the run keeps one capability,
CAP_DAC_READ_SEARCH (read and search any file, as an ambient capability its children
inherit): enough to reach the interpreter, and nothing that forges credentials
(CAP_SYS_ADMIN) or that bypasses a write permission. The config check asks access(2),
which looks with the real uid and no capability, so a python service starts through
`/usr/bin/env` (which then execs the interpreter in the same pid).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from harness import CHILDREN, PY, START, SupervisorProcess, wait_until

NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
          "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search")
UID = 65534
SYSTEMD_NOTIFY = shutil.which("systemd-notify")


class NobodySupervisor(SupervisorProcess):
    """`start_system.py run` as the user nobody, in a directory nobody owns."""

    def start(self) -> NobodySupervisor:
        self._out = open(self.stdout_path, "wb")
        env = {**self.env, "HOME": str(self.dir),
               "PATH": f"{Path(PY).parent}{os.pathsep}{self.env.get('PATH', os.defpath)}"}
        self.proc = subprocess.Popen([*NOBODY, PY, str(START), "run", "-c", str(self.config_path),
                                      *self.args], stdout=self._out, stderr=subprocess.STDOUT,
                                     env=env, cwd=self.dir)
        return self


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv, to run the supervisor as nobody")
    probe = subprocess.run([*NOBODY, PY, "-I", "-S", "-c", "pass"], capture_output=True, text=True,
                           timeout=60)
    if probe.returncode != 0:   # e.g. a container whose bounding set lacks the capability
        pytest.skip(f"cannot run {PY} as nobody here: {probe.stderr.strip()[:300]}")
    work = Path(tempfile.mkdtemp(prefix="unified-nobody-"))
    os.chown(work, UID, UID)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def count(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def service(sup: SupervisorProcess, name: str) -> dict:
    answer = httpx.get(f"{sup.api_url}/api/services/{name}",
                       headers={"X-API-Key": sup.api_key()}, timeout=10)
    return answer.json()


def assert_ready_and_beating(sup: SupervisorProcess, name: str, beats: Path) -> None:
    """Ready through READY=1, then 20 heartbeats (over 4 s, twice the 2 s timeout) and no freeze."""
    def refused() -> list[dict]:
        return [r for r in sup.records() if r.get("event", "").startswith("notify datagram refused")]
    wait_until(lambda: sup.state(name) == "running", 30, f"{name} to be running",
               seen=lambda: (sup.states(name), refused()))
    wait_until(lambda: count(beats) >= 20, 60, f"{name}'s heartbeats", seen=lambda: count(beats))
    sup.wait_api(30)
    wait_until(lambda: service(sup, name)["heartbeat_age_seconds"] is not None, 10,
               f"{name}'s heartbeat age", seen=lambda: service(sup, name))
    obj = service(sup, name)
    freezes = [r for r in sup.records() if r.get("service") == name and "freeze" in r.get("event", "")]
    assert not freezes, freezes
    assert obj["state"] == "running" and obj["ready"] and obj["health"] == "healthy", obj
    assert obj["heartbeat_age_seconds"] < 2, obj


SERVICE = """
    services:
      {name}:
        command: {command}
        readiness: {{notify: true}}
        heartbeat: {{timeout: 2s}}
"""


@pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="systemd-notify (Debian: systemd) not installed")
def test_systemd_notify_ready_and_watchdog_as_an_ordinary_user(nobody_dir):
    beats = nobody_dir / "beats"
    command = f'["bash", "{CHILDREN}/sd_shell.sh", "systemd-notify", "{beats}"]'
    with NobodySupervisor(nobody_dir, SERVICE.format(name="shell", command=command)) as sup:
        assert_ready_and_beating(sup, "shell", beats)
        # The barrier fd of each systemd-notify was closed, or each would wait 5 s for it.
        assert "barrier" not in sup.output().lower() and sup.stop() == 0


def test_pypi_sdnotify_ready_and_watchdog_as_an_ordinary_user(nobody_dir):
    beats = nobody_dir / "beats"
    command = f'["env", "{PY}", "{CHILDREN}/sdnotify_pypi.py", "{beats}"]'
    with NobodySupervisor(nobody_dir, SERVICE.format(name="pypi", command=command)) as sup:
        assert_ready_and_beating(sup, "pypi", beats)
        assert sup.stop() == 0


def test_a_helper_that_sends_and_exits_at_once_makes_a_bash_service_ready(nobody_dir):
    beats = nobody_dir / "beats"
    command = f'["bash", "{CHILDREN}/sd_shell.sh", "helper", "{PY}", "{beats}"]'
    with NobodySupervisor(nobody_dir, SERVICE.format(name="helped", command=command)) as sup:
        assert_ready_and_beating(sup, "helped", beats)
        assert sup.stop() == 0


def send_as(argv_prefix: tuple[str, ...], path: str, text: str) -> None:
    subprocess.run([*argv_prefix, PY, str(CHILDREN / "short_sender.py"), text],
                   env={**os.environ, "NOTIFY_SOCKET": path}, check=True, timeout=30)


def test_a_sender_in_no_services_tree_is_refused_and_logged_once(nobody_dir):
    with NobodySupervisor(nobody_dir, """
        services:
          waiter:
            command: ["env", "{py}", "{children}/sleeper.py"]
            readiness: {notify: true}
    """) as sup:
        sup.wait_state("waiter", "starting", timeout=30)
        path = wait_until(lambda: (nobody_dir / "state").exists() and notify_socket(sup), 30,
                          "the notify socket")
        # Ten READY=1 from this test's own process, then one from another outsider.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for _ in range(10):
                s.sendto(b"READY=1\nSTATUS=forged", path)
        send_as((), path, "READY=1")

        def refusals() -> list[dict]:
            return [r for r in sup.records() if r.get("event", "").startswith("notify datagram refused")]
        # Records are written in order: once the second sender's is there, every one of ours
        # was handled before it.
        wait_until(lambda: len({r["pid"] for r in refusals()}) >= 2, 30, "two refused senders",
                   seen=refusals)
        mine = [r for r in refusals() if r["pid"] == os.getpid()]
        assert len(mine) == 1 and mine[0]["keys"] == ["READY", "STATUS"], refusals()
        assert "forged" not in str(refusals())
        assert sup.state("waiter") == "starting"   # nobody else can make it ready
        assert sup.stop() == 0


def notify_socket(sup: SupervisorProcess) -> str | None:
    """The NOTIFY_SOCKET the supervisor gives its children, read from a child's environment."""
    import psutil
    try:
        for child in psutil.Process(sup.proc.pid).children():
            path = child.environ().get("NOTIFY_SOCKET")
            if path:
                return path
    except psutil.Error:
        pass
    return None


def test_a_barrier_returns_only_once_what_came_before_it_is_handled(tmp_path):
    answer = tmp_path / "barrier.json"
    with SupervisorProcess(tmp_path, f"""
        services:
          waiter:
            command: ["{{py}}", "{{children}}/barrier.py", "{answer}"]
            readiness: {{notify: true}}
    """) as sup:
        wait_until(answer.exists, 30, "the barrier's answer", seen=lambda: sup.output()[-2000:])
        barrier = json.loads(answer.read_text())
        running = sup.wait_state("waiter", "running", timeout=10)
        ready_at = datetime.fromisoformat(running["timestamp"].replace("Z", "+00:00")).timestamp()
        assert barrier["hung_up"], barrier
        assert ready_at <= barrier["at"], (ready_at, barrier)   # READY=1 was handled first
        assert sup.stop() == 0
