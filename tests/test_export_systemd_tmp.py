"""The exported unit's PrivateTmp (issue 15 item 4): PrivateTmp=yes gives the unit an empty
/tmp and /var/tmp of its own, so a project, state_dir, working directory or interpreter that
lies there would be missing when systemd starts it. Then the unit says PrivateTmp=no, and why."""

from __future__ import annotations

import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_export_systemd import settings, verify

from harness import ROOT
from unified_system.config import load_config
from unified_system.export.systemd import render_unit

CONFIG = """
supervisor:
  state_dir: {state_dir}
services:
  web:
    command: ["python3", "-m", "http.server", "8000"]
    cwd: {cwd}
"""
SYSTEM_PATH = {"PATH": "/usr/bin:/bin"}
PYTHON = "/usr/bin/python3"


def project(root: Path, state_dir: str = ".unified-system", cwd: str = "."):
    root.mkdir(parents=True, exist_ok=True)
    path = root / "services.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(state_dir=state_dir, cwd=cwd)))
    return load_config(path, environ=SYSTEM_PATH)


@contextmanager
def made_in(base: Path | str, prefix: str = "unified-test-") -> Iterator[Path]:
    """A fresh directory in `base`, removed with all it holds when the block ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A directory under neither /tmp nor /var/tmp."""
    base = Path.home() if str(Path.home()).startswith("/") else Path("/root")
    with made_in(base, prefix=".unified-test-") as path:
        assert not str(path).startswith(("/tmp", "/var/tmp"))
        yield path


def write(unit_text: str, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    unit = where / "unified-system.service"
    unit.write_text(unit_text)
    return unit


def test_a_project_in_tmp_gets_private_tmp_no_with_the_reason():
    with made_in("/tmp") as root:
        text = render_unit(project(root / "proj"), python=PYTHON)
        assert settings(text)["PrivateTmp"] == ["no"]
        assert f"# be missing: {root / 'proj'}" in text
        assert verify(write(text, root / "out")) == ""


def test_a_state_dir_in_var_tmp_gets_private_tmp_no(outside_tmp):
    with made_in("/var/tmp") as state:
        text = render_unit(project(outside_tmp / "proj", state_dir=str(state)), python=PYTHON)
        assert settings(text)["PrivateTmp"] == ["no"] and str(state) in text


def test_a_cwd_in_tmp_gets_private_tmp_no(outside_tmp):
    with made_in("/tmp") as cwd:
        text = render_unit(project(outside_tmp / "proj", cwd=str(cwd)), python=PYTHON)
        assert settings(text)["PrivateTmp"] == ["no"] and str(cwd) in text


def test_a_project_elsewhere_keeps_private_tmp_yes(outside_tmp):
    text = render_unit(project(outside_tmp / "proj"), python=PYTHON)
    # the unit also runs this checkout's start_system.py: a checkout under /tmp (a CI clone)
    # rightly gets PrivateTmp=no, naming it
    if str(ROOT).startswith(("/tmp/", "/var/tmp/")):
        assert settings(text)["PrivateTmp"] == ["no"] and str(ROOT) in text
    else:
        assert settings(text)["PrivateTmp"] == ["yes"]
    assert verify(write(text, outside_tmp / "out")) == ""
