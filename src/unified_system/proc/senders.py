"""Whose service an sd_notify datagram speaks for: the one whose main process is the sender
or one of the ancestors read at arrival (proc/notify.py).

A sender already gone at arrival (sent, exited and was reaped before the listener ran) has
no ancestry left to read. It is accepted only if its pid was seen in a service's tree by an
earlier datagram and that incarnation is still the current one. A pid in no tree is refused;
each sender's first refusal is reported, so a flood from one sender logs one line.
Used on the notify thread only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

REMEMBER = 4096     # senders remembered as members of a service's tree
REFUSALS = 256      # distinct refused senders reported; past that one summary, then silence


class Datagram(Protocol):
    """What attribution reads of proc/notify.py's datagram (which imports this module)."""
    @property
    def pid(self) -> int: ...
    @property
    def lineage(self) -> tuple[int, ...]: ...


class Senders:
    def __init__(self, remember: int = REMEMBER, refusals: int = REFUSALS) -> None:
        self._seen: dict[int, tuple[int, int]] = {}   # pid -> (main pid, incarnation)
        self._refused: set[int] = set()
        self._remember, self._refusals = remember, refusals
        self.refused_total = 0

    def attribute(self, datagram: Datagram, mains: Mapping[int, int]) -> tuple[int, int] | None:
        """(main pid, incarnation) the datagram speaks for, or None: refused."""
        for depth, pid in enumerate(datagram.lineage):
            inc = mains.get(pid)
            if inc is not None:
                for member in datagram.lineage[:depth]:
                    self._note(member, (pid, inc))
                return pid, inc
        if not datagram.lineage:  # gone before it could be read
            inc = mains.get(datagram.pid)
            if inc is not None:   # a main process whose last word came just before its exit
                return datagram.pid, inc
            seen = self._seen.get(datagram.pid)
            if seen is not None and mains.get(seen[0]) == seen[1]:
                return seen
        self.refused_total += 1
        return None

    def first_refusal(self, pid: int) -> bool:
        """Whether this refusal is to be logged: the first from `pid`, while few were."""
        if pid in self._refused or len(self._refused) > self._refusals:
            return False
        self._refused.add(pid)  # the one past the limit is logged too, as the summary's cue
        return True

    @property
    def refusals_capped(self) -> bool:
        return len(self._refused) > self._refusals

    def _note(self, pid: int, owner: tuple[int, int]) -> None:
        if pid in self._seen:
            self._seen.pop(pid)       # re-inserted last: the dict's order is its age
        elif len(self._seen) >= self._remember:
            self._seen.pop(next(iter(self._seen)))
        self._seen[pid] = owner
