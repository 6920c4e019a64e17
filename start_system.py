#!/usr/bin/env python3
"""Entry point: `python start_system.py [run|check|status|...]` (see README).

On a fresh machine the supervisor's dependencies may be missing: then it creates a
project-local virtualenv (.venv), installs itself there once, and re-executes inside it,
with that venv first on PATH so the children's `python` is the same interpreter. The
system's own Python is never modified.
"""

import os
import sys

NEEDED = ("yaml", "pydantic", "psutil", "watchdog", "httpx", "dotenv", "h11")


def _missing() -> list[str]:
    import importlib.util  # with pathlib, ~25 ms: kept off the quick path of client commands

    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def _bootstrap(missing: list[str]) -> None:
    import hashlib  # only on a first run: kept off every other start's path
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent
    venv = root / ".venv"
    python = venv / "bin" / "python"
    marker = venv / ".unified-system-installed"   # which pyproject.toml the venv was made from
    wanted = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    say = lambda text: print(f"unified-system | {text}", file=sys.stderr, flush=True)  # noqa: E731
    if os.environ.get("UNIFIED_BOOTSTRAPPED"):
        say(f"still missing after installing: {', '.join(missing)}; "
            f"try: {python} -m pip install -e {root}")
        raise SystemExit(2)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        say(f"first run: missing {', '.join(missing)}; installing into {venv} (once)")
        try:
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "-e", str(root)], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            say(f"could not install the dependencies ({exc}); install them by hand: "
                f"{sys.executable} -m pip install -e {root}")
            raise SystemExit(2) from None
        marker.write_text(wanted)
    env = dict(os.environ, UNIFIED_BOOTSTRAPPED="1", VIRTUAL_ENV=str(venv),
               PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    os.execve(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]], env)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "src"))  # a clone
    # status, logs, start, ... against a running supervisor: standard library only, so before
    # the dependency check; None when it cannot answer (then the full way, as ever).
    from unified_system.quick import main as quick

    if (code := quick(sys.argv[1:])) is not None:
        raise SystemExit(code)
    if missing := _missing():
        _bootstrap(missing)
    from unified_system.cli import main

    raise SystemExit(main())
