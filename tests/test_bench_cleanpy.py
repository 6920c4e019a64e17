"""bench/_cleanpy.py: the benchmarks' interpreter starts like a user's (no site hook of this
sandbox, so no certifi), with the same packages and this checkout's src."""

from __future__ import annotations

import subprocess
import sys

from harness import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from _cleanpy import clean_python  # noqa: E402


def test_clean_python_runs_no_pth_hook_and_finds_the_packages():
    python = clean_python()
    assert clean_python() == python   # made once
    done = subprocess.run([python, "-X", "importtime", "-c",
                           "import yaml, pydantic, unified_system; print(unified_system.__file__)"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == str(ROOT / "src" / "unified_system" / "__init__.py")
    assert "certifi" not in done.stderr and "_sandboxing" not in done.stderr
