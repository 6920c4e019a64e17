"""glibc malloc, tuned for a process that runs for weeks with many short-lived threads.

Measured by bench/soak.py (issue 16): under faults the Python heap stayed flat while the
supervisor's anonymous memory grew, in the malloc arenas of its threads (each thread that
allocates gets an arena of up to 64 MiB, and freed blocks inside one stay resident). Two
remedies, both no-ops where malloc is not glibc's (musl, say):
- at most ARENAS arenas (M_ARENA_MAX, unless MALLOC_ARENA_MAX says otherwise);
- malloc_trim(0) now and then, off the owner: it gives the free pages inside every arena
  back to the kernel, not only the top of the main heap.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8
ARENAS = 2
TRIM_EVERY = 30.0   # seconds between trims (the sampler's thread)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Call before any thread starts. Leaves an explicit MALLOC_ARENA_MAX alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    return bool(mallopt is not None and mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return the free pages of every arena to the kernel; True when some were."""
    libc = _libc()
    malloc_trim = getattr(libc, "malloc_trim", None)
    return bool(malloc_trim is not None and malloc_trim(0))
