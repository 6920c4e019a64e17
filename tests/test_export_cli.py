"""`export systemd|kubernetes -o DIR` from the command line, on the real services.yaml."""

import shutil
import subprocess

import pytest

from harness import PY, ROOT, START


@pytest.mark.parametrize("kind,expect", [("systemd", "unified-system.service"),
                                         ("kubernetes", "backend.yaml")])
def test_export_writes_files_and_prints_them(tmp_path, kind, expect):
    result = subprocess.run([PY, str(START), "export", kind, "-c", str(ROOT / "services.yaml"),
                             "-o", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / expect).exists() and str(tmp_path / expect) in result.stdout
    if kind == "systemd" and shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / expect)],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr


def test_export_of_a_bad_config_exits_2(tmp_path):
    bad = tmp_path / "services.yaml"
    bad.write_text("services:\n  a: {command: [sleep, '1'], restart: {polcy: x}}\n")
    result = subprocess.run([PY, str(START), "export", "systemd", "-c", str(bad), "-o", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "polcy" in result.stderr
