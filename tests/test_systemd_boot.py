"""The exported unit under a real systemd (issue 15 item 5): `systemd-analyze verify` checks
only syntax, so a Debian system (debootstrap, cached; .ci/run builds it) is booted with
`systemd-nspawn --boot`, the unit is installed there, and systemd itself starts it (Type=notify:
`systemctl start` returns once the supervisor sent READY=1), restarts it when its watchdog
pings stop (the supervisor frozen with SIGSTOP), and stops it leaving no process behind.

The container shares the host's network and sees this checkout, the interpreter and the
project at the same paths (bind mounts), so the unit is the one `export systemd` writes for
this host. `--volatile=overlay` keeps the cached system unchanged.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from harness import CHILDREN, ROOT, free_port, wait_until
from unified_system.config import load_config
from unified_system.export.systemd import UNIT_NAME, render_unit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a first run builds the system

CI_DIR = Path(os.environ.get("UNIFIED_NSPAWN_DIR", "/var/lib/unified-system-ci"))
ROOTFS = CI_DIR / "bookworm"
UNIT = UNIT_NAME.removesuffix(".service")
WATCHDOG_SEC = 5  # the exported 30 s, shortened so that a freeze is seen within the test


def build_rootfs() -> None:
    """What .ci/run does: a minimal Debian with systemd (about 3 minutes, once)."""
    tmp = ROOTFS.with_name(ROOTFS.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus,procps",
                    "bookworm", str(tmp)],
                   check=True, capture_output=True, timeout=1200)
    tmp.rename(ROOTFS)


@pytest.fixture(scope="module")
def rootfs() -> Path:
    if os.geteuid() != 0 or shutil.which("systemd-nspawn") is None:
        pytest.skip("needs root and systemd-nspawn (Debian systemd-container; .ci/run installs it)")
    if sys.base_prefix in ("/usr", "/"):
        pytest.skip("the interpreter is the system's: bind-mounting it would hide the guest's /usr")
    if not (ROOTFS / "lib" / "systemd" / "systemd").exists():
        if shutil.which("debootstrap") is None:
            pytest.skip(f"no system at {ROOTFS} and no debootstrap to build one (.ci/run does)")
        build_rootfs()
    return ROOTFS


class Machine:
    """A booted container; commands run inside it through nsenter (no machined on the host)."""

    def __init__(self, rootfs: Path, binds: list[tuple[Path, bool]], log: Path) -> None:
        self.name = f"unified-{secrets.token_hex(4)}"
        self.log = log
        args = ["systemd-nspawn", "-D", str(rootfs), "--register=no", "--keep-unit", "--boot",
                "--console=passive", "--volatile=overlay", f"--machine={self.name}"]
        args += [f"--bind{'' if rw else '-ro'}={path}" for path, rw in binds]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        self.leader = wait_until(self._leader, 60, "the container's init", seen=self.tail)

    def _leader(self) -> int | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self.proc.returncode}: {self.tail()}")
        # nspawn forks an intermediate child first; the leader is the guest's init
        for child in psutil.Process(self.proc.pid).children():
            try:
                if child.name() == "systemd":
                    return child.pid
            except psutil.NoSuchProcess:
                pass
        return None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def run(self, *argv: str, check: bool = True, timeout: float = 120) -> str:
        done = subprocess.run(["nsenter", "-t", str(self.leader), "-a", *argv],
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, (argv, done.returncode, done.stdout, done.stderr)
        return done.stdout.strip()

    def show(self, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", UNIT, *(f"-p{p}" for p in props))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)   # nspawn asks the guest's init to power off
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def project() -> Iterator[Path]:
    """Outside /tmp (the unit's PrivateTmp=yes would hide it), at the same path in the guest."""
    CI_DIR.mkdir(parents=True, exist_ok=True)
    path = CI_DIR / f"run-{secrets.token_hex(4)}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_exported_unit_under_a_real_systemd(rootfs, project, tmp_path):
    port = free_port()
    shutil.copy(CHILDREN / "sleeper.py", project / "sleeper.py")
    (project / "services.yaml").write_text(textwrap.dedent(f"""
        supervisor:
          port: {port}
          state_dir: {project / 'state'}
          shutdown_timeout: 20s
        services:
          web:
            command: ["{os.path.basename(sys.executable)}", "{project / 'sleeper.py'}"]
    """))
    environ = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    unit_text = render_unit(load_config(project / "services.yaml", environ=environ),
                            python=sys.executable, watchdog_sec=WATCHDOG_SEC)
    assert "PrivateTmp=yes" in unit_text or str(ROOT).startswith(("/tmp/", "/var/tmp/"))
    (project / UNIT_NAME).write_text(unit_text)

    binds = [(ROOT, False), (Path(sys.base_prefix), False), (project, True)]
    if sys.prefix != sys.base_prefix:
        binds.append((Path(sys.prefix), False))
    machine = Machine(rootfs, binds, tmp_path / "nspawn.log")
    try:
        wait_until(lambda: machine.run("systemctl", "is-system-running", check=False)
                   in ("running", "degraded"), 120, "the guest's systemd to finish booting",
                   seen=lambda: (machine.run("systemctl", "list-jobs", "--no-pager", check=False),
                                 machine.tail()))
        # install as the unit's own comment says
        machine.run("cp", str(project / UNIT_NAME), f"/etc/systemd/system/{UNIT_NAME}")
        machine.run("systemctl", "daemon-reload")

        # Type=notify: start returns when the supervisor sent READY=1 (or fails)
        machine.run("systemctl", "start", UNIT, timeout=300)
        first = machine.show("ActiveState", "SubState", "MainPID", "NRestarts")
        assert first["ActiveState"] == "active" and first["SubState"] == "running", first
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200

        def web() -> dict:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/services/web", timeout=5,
                                   headers={"X-API-Key": (project / "state" / "api_key").read_text().strip()})
                return answer.json() if answer.status_code == 200 else {}
            except (httpx.HTTPError, OSError, ValueError):
                return {}

        def web_running() -> bool:
            return web().get("state") == "running"
        # the supervisor's own WATCHDOG=1 keeps the unit up past 2 x WatchdogSec
        wait_until(lambda: web_running() and web()["uptime_seconds"] > 2 * WATCHDOG_SEC, 60,
                   "web up for 2 x WatchdogSec", seen=web)
        assert machine.show("ActiveState", "MainPID", "NRestarts") == {
            "ActiveState": "active", "MainPID": first["MainPID"], "NRestarts": "0"}

        # Hung supervisor: no WATCHDOG=1 for WatchdogSec, systemd aborts and restarts it.
        machine.run("kill", "-STOP", first["MainPID"])

        def restarted() -> dict[str, str] | None:
            now = machine.show("ActiveState", "SubState", "MainPID", "NRestarts")
            return now if now["NRestarts"] == "1" and now["ActiveState"] == "active" \
                and now["SubState"] == "running" and now["MainPID"] != first["MainPID"] else None
        second = wait_until(restarted, 120, "systemd's watchdog to restart the frozen supervisor",
                            seen=lambda: machine.show("ActiveState", "SubState", "MainPID", "NRestarts",
                                                      "Result"))
        journal = machine.run("journalctl", "-u", UNIT, "--no-pager", "-o", "cat")
        assert "Watchdog timeout" in journal, journal[-3000:]
        wait_until(web_running, 60, "web running again under the new supervisor")
        assert second["MainPID"] != first["MainPID"]

        # stop: nothing of the unit is left, in the guest or on the host
        machine.run("systemctl", "stop", UNIT, timeout=180)
        assert machine.show("ActiveState")["ActiveState"] == "inactive"
        procs = machine.run("ps", "-eo", "pid,args", "--no-headers")
        assert str(project) not in procs and "start_system.py" not in procs, procs
        left = [p.info for p in psutil.process_iter(["pid", "cmdline"])
                if p.info["pid"] != machine.proc.pid   # nspawn names the project in a --bind
                and any(str(project) in a for a in (p.info["cmdline"] or []))]
        assert left == []
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        machine.close()
