"""A Python that starts the way it does on a user's machine, for start-up benchmarks.

This sandbox puts `_sandboxing_egress_ca.pth` in the global site-packages: it imports certifi
and importlib.resources at every interpreter start (~50 ms, ~2.6 MB), which a user's Python
does not. The file must stay (pip needs it), so the benchmarks run a venv (made once, under
/tmp) whose only .pth lists the global site-packages and the project's src: a path line in a
.pth is appended to sys.path, but the .pth files inside that directory are never executed.

    python bench/_cleanpy.py          # prints the interpreter's path (making the venv once)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PTH = "unified_system_clean.pth"


def clean_python() -> str:
    """The path of the clean interpreter (same version and packages as this one)."""
    paths = [*site.getsitepackages(), str(ROOT / "src")]
    tag = hashlib.sha256("\0".join([sys.executable, sys.version, *paths]).encode()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"unified-cleanpy-{os.getuid()}-{tag}"
    python = venv / "bin" / "python"
    if python.exists():
        return str(python)
    # Made beside and renamed into place: two benchmarks starting at once never see half a venv.
    part = Path(tempfile.mkdtemp(prefix=venv.name + ".", dir=venv.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(part)],
                       check=True)
        lib = next((part / "lib").glob("python*")) / "site-packages"
        (lib / PTH).write_text("".join(f"{p}\n" for p in paths))
        # The venv's pyvenv.cfg and scripts name `part`; only `home` matters to the interpreter,
        # and it names the base Python, so the rename is safe.
        os.rename(part, venv)
    except OSError:
        if not python.exists():
            raise
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return str(python)


if __name__ == "__main__":
    print(clean_python())
