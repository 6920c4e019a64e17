"""Crash dumps for the API (SPEC §6 `GET /api/crashes`): a listing, and one dump by its file
name. Dumps are written redacted (proc/crashdumps.py); they are scrubbed again on the way out,
since the running config's secrets may be newer than the dump."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# A dump's file name, as proc/crashdumps.py writes it: service-YYYYMMDDTHHMMSS.ffffffZ.json.
# Anything else (a path, `..`, a link's name) is not a dump and is not opened.
DUMP_NAME = re.compile(r"(?P<service>[A-Za-z0-9][A-Za-z0-9_.-]{0,99})-\d{8}T\d{6}\.\d{6}Z\.json")
MAX_LISTED = 500
MAX_BYTES = 1 << 20      # a dump is a few KiB; a bigger file is not one of ours


def listing(directory: Path) -> list[dict[str, Any]]:
    """The dumps, newest first: file, service, size and wall time of the write."""
    found: list[dict[str, Any]] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for path in entries:
        match = DUMP_NAME.fullmatch(path.name)
        if not match or path.is_symlink():
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        found.append({"file": path.name, "service": match["service"],
                      "size": stat.st_size, "at": stat.st_mtime})
    found.sort(key=lambda d: (d["at"], d["file"]), reverse=True)
    return found[:MAX_LISTED]


def read(directory: Path, name: str) -> dict[str, Any] | None:
    """One dump by its file name, or None when there is no such dump (or it is not JSON)."""
    if not DUMP_NAME.fullmatch(name):
        return None
    path = directory / name
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
            return None
        body = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return None
    return {"file": name, "dump": body}
