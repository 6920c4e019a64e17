"""`export systemd`: the unit is checked by the real systemd-analyze, then line by line."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from unified_system.config import load_config
from unified_system.export import ExportError, default_out_dir, run_export

ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"

CONFIG = """
supervisor:
  state_dir: {state_dir}
  shutdown_timeout: 20s
services:
  api:
    command: ["python", "-m", "http.server", "8000"]
    cwd: services/api
    readiness: {{tcp: {{port: 8000}}}}
  worker:
    command: ["python", "-c", "import time; time.sleep(60)"]
    cwd: services/worker
    depends_on: [api]
environments:
  production:
    services: {{worker: {{enabled: false}}}}
"""


def project(root: Path, state_dir: str = ".unified-system", env_name: str | None = None):
    for sub in ("services/api", "services/worker"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    path = root / "services.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(state_dir=state_dir)))
    environ = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    return load_config(path, env_name=env_name, environ=environ)


def verify(unit: Path) -> str:
    """systemd-analyze's findings about the unit: empty when it has nothing to say."""
    assert os.path.exists(ANALYZE), "systemd-analyze is needed (Debian package: systemd)"
    done = subprocess.run([ANALYZE, "verify", "--man=no", str(unit)], capture_output=True,
                          text=True, timeout=60)
    findings = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, findings
    return findings


def settings(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def exec_argv(value: str) -> list[str]:
    # systemd's quoting of Exec lines, for the characters the exporter emits: double quotes
    # with backslash escapes (as in a shell), %% and $$ for a literal % and $
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(value)]


def test_unit_passes_systemd_analyze_verify(tmp_path):
    loaded = project(tmp_path, env_name="production")
    [unit] = run_export("systemd", loaded, tmp_path / "out")
    assert unit == tmp_path / "out" / "unified-system.service"
    assert verify(unit) == ""


def test_unit_runs_the_supervisor_as_a_notify_service_with_watchdog(tmp_path):
    loaded = project(tmp_path, env_name="production")
    [unit] = run_export("systemd", loaded, tmp_path / "out")
    s = settings(unit.read_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["30s"]
    assert s["Restart"] == ["on-failure"] and s["KillMode"] == ["mixed"]
    assert s["TimeoutStopSec"] == ["35s"]  # shutdown_timeout 20s + a 15s margin
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["WorkingDirectory"] == [str(tmp_path)]
    assert s["EnvironmentFile"] == [f"-{tmp_path}/.env"]
    assert s["WantedBy"] == ["multi-user.target"]
    argv = exec_argv(s["ExecStart"][0])
    assert argv[0] == sys.executable and os.path.isabs(argv[1])
    assert argv[1].endswith("start_system.py") and os.path.isfile(argv[1])
    assert argv[2:] == ["run", "-c", str(tmp_path / "services.yaml"), "--env", "production"]


def test_path_puts_the_interpreter_of_the_commands_first(tmp_path):
    loaded = project(tmp_path)
    [unit] = run_export("systemd", loaded, tmp_path / "out")
    [path] = [v for v in settings(unit.read_text())["Environment"] if v.startswith("PATH=")]
    dirs = path.removeprefix("PATH=").split(":")
    assert dirs[0] == os.path.dirname(sys.executable)
    assert "/usr/bin" in dirs and "/bin" in dirs


def test_hardening_leaves_state_dir_and_project_writable(tmp_path):
    outside = tmp_path / "var" / "state"
    loaded = project(tmp_path / "proj", state_dir=str(outside))
    [unit] = run_export("systemd", loaded, tmp_path / "out")
    s = settings(unit.read_text())
    # PrivateTmp=yes would hide a project under /tmp (test_export_systemd_tmp.py)
    under_tmp = str(tmp_path.resolve()).startswith(("/tmp/", "/var/tmp/"))
    assert s["NoNewPrivileges"] == ["yes"] and s["PrivateTmp"] == ["no" if under_tmp else "yes"]
    assert s["ProtectSystem"] == ["strict"]
    writable = s["ReadWritePaths"][0].split()
    assert str(tmp_path / "proj") in writable and str(outside) in writable
    assert "User" not in s  # only a commented hint: the operator picks the account
    assert "#User=unified" in unit.read_text()
    assert verify(unit) == ""


def test_awkward_paths_are_quoted_and_escaped(tmp_path):
    # a space splits words and % starts a specifier: both must survive into the unit
    root = tmp_path / "my project %i"
    loaded = project(root, env_name="production")
    [unit] = run_export("systemd", loaded, tmp_path / "out")
    assert verify(unit) == ""
    s = settings(unit.read_text())
    assert exec_argv(s["ExecStart"][0])[4] == str(root / "services.yaml")
    assert s["WorkingDirectory"] == [str(root).replace("%", "%%")]


def test_hardening_scores_better_than_the_default(tmp_path):
    loaded = project(tmp_path)
    [unit] = run_export("systemd", loaded, tmp_path / "out")
    done = subprocess.run([ANALYZE, "security", "--offline=yes", "--no-pager", str(unit)],
                          capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert level, done.stdout + done.stderr
    assert float(level.group(1)) < 8.0  # a unit without any hardening scores 9.6


def test_default_out_dir_and_unknown_kind(tmp_path):
    loaded = project(tmp_path)
    [unit] = run_export("systemd", loaded)
    assert unit.parent == default_out_dir("systemd", loaded) == tmp_path / "deploy" / "systemd"
    with pytest.raises(ExportError, match="unknown export kind 'nomad'"):
        run_export("nomad", loaded)
