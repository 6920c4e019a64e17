"""The idle keep-alive connections of http probes: one per (incarnation, role), probe thread only.

A kept socket stays in the prober's epoll for input, so a server that closes it while it
idles (its idle timeout, or its exit with the incarnation) wakes the prober, which closes
it here at once: no CLOSE_WAIT socket is left behind.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from unified_system.probes.wire import Target

# A kept connection is not reused past this age: a server whose accept queue is full, or
# whose accept loop died, is then caught by a fresh connect. 30 s is Kubernetes' default
# failure window (period 10 s x failure_threshold 3), and costs 1 connect in 30 at 1 s.
MAX_AGE = 30.0
LIMIT = 4096         # idle connections kept at most; past it one is closed, not kept

Key = tuple[int, str]   # (incarnation, role)


@dataclass(eq=False)
class Kept:
    key: Key
    sock: socket.socket
    target: Target
    born: float          # when the connection was opened


class KeptConnections:
    def __init__(self) -> None:
        self._by_key: dict[Key, Kept] = {}
        self._by_fd: dict[int, Kept] = {}
        self.sweep_at: float | None = None   # when idle connections past MAX_AGE go

    def take(self, key: Key, target: Target, now: float) -> Kept | None:
        """The idle connection of `key`, if it may carry an attempt at `target` now. One that
        may not (too old, or the target changed by a reload) is closed."""
        kept = self._by_key.pop(key, None)
        if kept is None:
            return None
        del self._by_fd[kept.sock.fileno()]
        # A reload may remake an equal target: equal is as good as the same.
        if (kept.target is target or kept.target == target) and now - kept.born < MAX_AGE:
            return kept
        kept.sock.close()
        return None

    def park(self, key: Key, sock: socket.socket, target: Target, born: float, now: float) -> bool:
        """Keep `sock` for `key`'s next attempt; False: the caller closes it instead."""
        if now - born >= MAX_AGE or key in self._by_key or len(self._by_key) >= LIMIT:
            return False
        kept = Kept(key, sock, target, born)
        self._by_key[key] = self._by_fd[sock.fileno()] = kept
        if self.sweep_at is None:
            self.sweep_at = now + MAX_AGE
        return True

    def closed_by_peer(self, fd: int) -> bool:
        """An event on an idle kept socket: the server closed it (or spoke unasked)."""
        kept = self._by_fd.get(fd)
        if kept is None:
            return False
        self._drop(kept)
        return True

    def sweep(self, now: float) -> None:
        """Idle connections past MAX_AGE close: an incarnation that ended while its server
        lives on (a probe of another process's port) leaves none behind for long."""
        for kept in [k for k in self._by_key.values() if now - k.born >= MAX_AGE]:
            self._drop(kept)
        self.sweep_at = now + MAX_AGE / 2 if self._by_key else None

    def forget(self, inc: int, role: str | None) -> None:
        """An incarnation's probes were taken back (role None: all of them)."""
        for key in [k for k in self._by_key if k[0] == inc and (role is None or k[1] == role)]:
            self._drop(self._by_key[key])

    def close(self) -> None:
        for kept in self._by_key.values():
            kept.sock.close()
        self._by_key.clear()
        self._by_fd.clear()

    def _drop(self, kept: Kept) -> None:
        self._by_fd.pop(kept.sock.fileno(), None)
        if self._by_key.get(kept.key) is kept:
            del self._by_key[kept.key]
        kept.sock.close()
