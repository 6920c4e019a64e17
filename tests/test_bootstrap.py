"""A fresh machine: `python start_system.py` installs its own dependencies into .venv once."""

import shutil
import subprocess
import sys

import pytest

from harness import ROOT


@pytest.mark.slow
@pytest.mark.timeout(900)   # a real pip install from the registry: minutes on a busy machine
def test_first_run_bootstraps_a_project_venv_and_works(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("start_system.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (project / "services.yaml").write_text("services:\n  a: {command: [sleep, '1']}\n")
    # -S: this interpreter sees no site-packages, as on a machine with nothing installed
    first = subprocess.run([sys.executable, "-S", "start_system.py", "check"], cwd=project,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "first run: missing" in first.stderr and "wave 1: a" in first.stdout
    assert (project / ".venv" / "bin" / "python").exists()
    again = subprocess.run([sys.executable, "-S", "start_system.py", "check"], cwd=project,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "first run" not in again.stderr   # re-used, not reinstalled
