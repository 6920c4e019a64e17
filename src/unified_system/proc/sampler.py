"""Samples memory of services that have a limit, and the host's CPU, memory and disk.

It runs only when there is something to watch, so an idle supervisor costs nothing.
Results go to the owner as events; the owner decides what to do with them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil

from unified_system.core.events import HostAlert, Samples
from unified_system.proc import malloc
from unified_system.proc.inspect import tree_rss

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

    def run(self) -> None:
        psutil.cpu_percent(interval=None)  # prime: the first reading is meaningless
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
            readings = {"cpu": psutil.cpu_percent(interval=None),
                        "memory": psutil.virtual_memory().percent,
                        "disk": psutil.disk_usage(str(self._disk)).percent}
        except OSError:
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
