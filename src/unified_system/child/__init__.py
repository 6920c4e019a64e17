"""Helpers that CHILD programs import to speak the supervisor's protocols.

Stdlib only, so a child needs nothing but this package on its path:

- :mod:`unified_system.child.notify`: sd_notify (``READY=1``, ``WATCHDOG=1``, ...),
  the HTTP heartbeat, and inherited listening sockets (``LISTEN_FDS``).
- :mod:`unified_system.child.checkpoint`: durable generation-numbered checkpoints in
  ``$CHECKPOINT_DIR``.
"""

from __future__ import annotations

from . import checkpoint, notify
from .checkpoint import Checkpoint

__all__ = ["Checkpoint", "checkpoint", "notify"]
