"""Crash dumps (SPEC §8): one JSON file per crash or hard freeze, mode 0600, written off the
owner thread. Also keeps a bounded crash history per service for suggestions."""

from __future__ import annotations

import json
import os
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from unified_system import logsetup
from unified_system.logsetup import redact
from unified_system.proc.logfile import tail

HISTORY = 50
KEEP_FILES = 20


_STAMP = "[0-9]" * 8 + "T" + "[0-9]" * 6 + "." + "[0-9]" * 6 + "Z"


def dumps_of(directory: Path, service: str) -> list[Path]:
    """The service's dumps, oldest first; never another's (`api` vs `api-worker`)."""
    return sorted(directory.glob(f"{service}-{_STAMP}.json"))


class CrashDumps:
    def __init__(self, directory: Path, log_dir: Path) -> None:
        self.dir = directory
        self.log_dir = log_dir
        self.history: dict[str, deque] = defaultdict(lambda: deque(maxlen=HISTORY))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dumps")

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._pool.submit(fn, *args)

    def write(self, record: dict[str, Any]) -> None:
        self._pool.submit(self._write, record)

    def _write(self, record: dict[str, Any]) -> Path:
        service = record["service"]
        record = {**record, "last_lines": tail(self.log_dir / f"{service}.log", 50)}
        from datetime import UTC, datetime  # here: a crash is rare, datetime ~0.35 MB resident

        stamp = datetime.fromtimestamp(record["at"], UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.dir / f"{service}-{stamp}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as fh:
            # Redacted before encoding, last lines included: a child's output quotes secrets.
            json.dump(logsetup.hidden().tree(redact(record)), fh, indent=2, default=str)
        self.history[service].append({k: record.get(k) for k in ("at", "reason", "exit", "uptime_seconds")})
        self._prune(service)
        return path

    def forget(self, name: str) -> None:
        """A removed service's history goes, on the pool that appends to it."""
        self._pool.submit(self.history.pop, name, None)

    def _prune(self, service: str) -> None:
        files = dumps_of(self.dir, service)
        for old in files[:-KEEP_FILES]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
