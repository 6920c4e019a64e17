"""Samples memory of services that have a limit, and the host's CPU, memory and disk.

It runs only when there is something to watch, so an idle supervisor costs nothing.
Results go to the owner as events; the owner decides what to do with them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from unified_system.core.events import HostAlert, Samples
from unified_system.proc import malloc
from unified_system.proc.inspect import tree_rss
from unified_system.proc.procfs import HostMeter

HOST_THRESHOLD = 80.0


class Sampler(threading.Thread):
    def __init__(self, post: Callable[[object], None], watched: Callable[[], Mapping[int, int]],
                 disk_path: Path, interval: float = 1.0, host_every: int = 5) -> None:
        super().__init__(name="sampler", daemon=True)
        self._post = post
        self._watched = watched          # incarnation -> main pid, published by the owner
        self._disk = disk_path
        self._interval = interval
        self._host_every = host_every
        self._halt = threading.Event()
        self._host_over: set[str] = set()
        self._meter = HostMeter()

    def run(self) -> None:
        try:
            self._meter.cpu()  # prime: the first reading is meaningless
        except OSError:
            pass
        tick = 0
        while not self._halt.wait(self._interval):
            watched = dict(self._watched())
            if watched:
                self._post(Samples(tuple((inc, tree_rss(pid)) for inc, pid in watched.items())))
            tick += 1
            if tick % self._host_every == 0:
                self._host()
            if tick % max(1, round(malloc.TRIM_EVERY / self._interval)) == 0:
                malloc.trim()  # here, not on the owner: a trim of every arena takes milliseconds

    def _host(self) -> None:
        try:
            readings = {"cpu": self._meter.cpu(), "memory": self._meter.memory(),
                        "disk": self._meter.disk(str(self._disk))}
        except (OSError, ValueError, IndexError):
            return
        for what, value in readings.items():
            over = value >= HOST_THRESHOLD
            if over and what not in self._host_over:  # report a crossing once, not every tick
                self._post(HostAlert(what, value))
            if over:
                self._host_over.add(what)
            else:
                self._host_over.discard(what)

    def close(self) -> None:
        self._halt.set()
        self.join(2)
