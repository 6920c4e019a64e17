"""The open-files limit: the soft one raised to the hard one when the supervisor starts.

The soft limit (often 1024, or 256 under `ulimit -n 256`) is a guard against programs that
leak descriptors; the hard one is what the administrator allows. A supervisor holds a
descriptor per connection, pipe, pidfd and log, and running out made spawns fail (EMFILE),
so it takes what it is allowed, as systemd, nginx and Go programs do at start. Children
inherit the raised soft limit.
"""

from __future__ import annotations

import resource

NR_OPEN = "/proc/sys/fs/nr_open"   # the kernel's ceiling: RLIM_INFINITY is refused for files


def raise_nofile() -> tuple[int, int]:
    """(soft before, soft after). Never fails: a limit it cannot raise stays as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open(NR_OPEN) as fh:
                target = int(fh.read())
        except (OSError, ValueError):
            target = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, target
