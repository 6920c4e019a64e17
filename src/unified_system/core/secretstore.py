"""Secrets the supervisor generates once and hands to children (`secrets:` of a service).

Each is a file <state_dir>/secrets/NAME (0600, in a 0700 directory), made on first use and
kept across runs, so two services listing one name share one value for good. A file whose
mode ever let another user read it is replaced, as its value may be known.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from unified_system.logsetup import get_logger
from unified_system.tokens import token_urlsafe


class SecretStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._values: dict[str, str] = {}
        # The owner spawns; an API thread may rebuild its scrubber at the same moment.
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        with self._lock:
            value = self._values.get(name)
            if value is None:
                value = self._values[name] = self._load_or_create(name)
            return value

    def values(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._values.values())

    def _load_or_create(self, name: str) -> str:
        path = self.directory / name   # name is an env variable name (schema): no '/'
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            existing = path.read_text().strip()
        except FileNotFoundError:
            mode, existing = 0, ""
        if existing and not mode & 0o077:
            return existing
        if existing:
            get_logger(component="secrets").warning(
                "a secret file was readable by others; replaced by a new value",
                secret=name, path=str(path), mode=oct(mode))
        return self._write(path, token_urlsafe(32))

    def _write(self, path: Path, value: str) -> str:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (value + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return value
