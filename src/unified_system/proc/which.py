"""`which`: shutil.which's answer on POSIX, without importing shutil.

shutil imports bz2, lzma and zlib (with their C libraries) for its archive functions:
0.63 MB of the resident supervisor's RSS for a PATH lookup at spawn (issue 20, bench/RESULTS.md
"Footprint, third round"). Held to shutil.which's answers by tests/test_footprint_lean.py.
"""

from __future__ import annotations

import os


def _executable(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.X_OK) and not os.path.isdir(path)


def which(cmd: str, path: str | None = None) -> str | None:
    """The first executable `cmd` on `path` (default $PATH, else the system's default
    path); a `cmd` with a directory part is checked as it is."""
    if os.path.dirname(cmd):
        return cmd if _executable(cmd) else None
    if path is None:
        path = os.environ.get("PATH")
        if path is None:
            try:
                path = os.confstr("CS_PATH")
            except (AttributeError, ValueError):
                path = os.defpath
    if not path:
        return None
    seen: set[str] = set()
    for directory in path.split(os.pathsep):
        if directory not in seen:
            seen.add(directory)
            name = os.path.join(directory, cmd)
            if _executable(name):
                return name
    return None
