"""The core's one way to the world: the `Effects` port.

The owner decides; an adapter outside core/ (runtime.py) spawns, signals, probes,
notifies systemd, writes crash dumps and watches files. A fake adapter (tests/core/) lets
the owner be driven in-process with a fake clock. Nothing in core/ imports proc/ or api/:
what the adapter may read of the owner is a `Link` (post, and maps replaced whole), never
the Supervisor itself.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from unified_system.config.view import ConfigRecord, LoadedConfig
    from unified_system.core.unit import Unit


class SpawnError(Exception):
    """The program could not be executed at all (missing, not executable, bad cwd)."""


class Spawned(Protocol):
    @property
    def pid(self) -> int: ...
    @property
    def pgid(self) -> int: ...


class CrashDumpSink(Protocol):
    def submit(self, job: Callable[[], None]) -> object: ...
    def write(self, record: dict[str, Any]) -> None: ...


class FileWatches(Protocol):
    def watch(self, key: str, paths: Iterable[Path], ignore: Iterable[str]) -> None: ...
    def unwatch(self, key: str) -> None: ...


@dataclass(frozen=True)
class Link:
    """What an adapter may use of the owner: its door, and the maps it replaces whole
    (read from other threads without a lock for that reason)."""
    post: Callable[[object], None]
    loaded: Callable[[], LoadedConfig]
    config: Callable[[], ConfigRecord]
    pid_map: Callable[[], Mapping[int, int]]     # main pid -> incarnation (notify senders)
    mem_watch: Callable[[], Mapping[int, int]]   # incarnation -> pid (memory sampler)


@dataclass(frozen=True)
class Facade:
    """What the control plane and its observers (api/) may use of the owner: its door, what
    it publishes (replaced whole, so read without a lock), the config running, and the list
    of observers. Never the Supervisor, never the adapter's internals."""
    post: Callable[[object], None]
    snapshot: Callable[[], tuple[dict[str, Any], ...]]
    health: Callable[[], dict[str, Any]]
    config: Callable[[], ConfigRecord]
    loaded: Callable[[], LoadedConfig]
    # Called on the owner thread with each published event; observers add and remove
    # themselves on the owner thread too (open_api, close).
    listeners: list[Callable[[dict[str, Any]], None]]


class Effects(Protocol):
    """Everything the owner does to the world. Each call returns at once: what takes time
    happens on the adapter's threads, and its outcome comes back as a posted event."""

    state_dir: Path
    log_dir: Path
    metrics: Any    # the metric hooks (api/metrics.py); prometheus_client stays outside core/

    @property
    def watcher(self) -> FileWatches | None: ...   # None until something is watched

    # start and end of a run
    def open(self) -> None: ...
    def open_late(self, then: Callable[[], None]) -> None: ...
    def open_api(self, facade: Facade) -> None: ...
    def open_watcher(self) -> None: ...
    def close(self) -> None: ...
    def watch_signals(self, signums: Sequence[int], on_signal: Callable[[int], None]) -> dict[int, Any]: ...

    # children
    def spawn(self, unit: Unit, inc: int) -> Spawned: ...
    def spawn_build(self, name: str, digest: str, run: int) -> Spawned: ...
    def signal_group(self, pgid: int, sig: int) -> bool: ...  # False: the group is empty
    def signal_pid(self, pid: int, sig: signal.Signals) -> None: ...
    def group_alive(self, pgid: int) -> bool: ...
    # Probes repeat on the prober's thread from `delay` on, until forgotten; every result
    # comes back as a ProbeResult (role: readiness | liveness | startup).
    def watch_probe(self, unit: Unit, role: str, probe: Any, delay: float) -> None: ...
    def forget_probes(self, inc: int, role: str | None = None) -> None: ...   # None: all roles
    def explain_not_startable(self, unit: Unit) -> str: ...
    def service_line(self, name: str, text: str) -> None: ...   # into the service's log
    def log_tail(self, name: str, lines: int) -> list[str]: ...
    def stop_leftovers(self, found: list[dict[str, Any]], timeout: float, log: Any) -> int: ...
    def find_leftovers(self, state: dict[str, Any]) -> list[dict[str, Any]]: ...   # still running
    def create_time(self, pid: int) -> float | None: ...   # any thread: state.json's stamp

    # a process's state for a freeze verdict (psutil stays outside core/)
    def process_state(self, pid: int) -> str | None: ...
    def cpu_seconds(self, pid: int) -> float | None: ...
    def inspect_frozen(self, pid: int, cpu: float | None) -> dict[str, Any]: ...

    # background work and helper programs
    def submit(self, job: Callable[[], None]) -> object: ...
    def run_helper(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
                   cwd: str | None = None) -> subprocess.CompletedProcess[bytes]: ...
    @property
    def crash_dumps(self) -> CrashDumpSink: ...

    # services added, changed and removed by a reload
    def add_service(self, name: str, width: int | None = None) -> None: ...
    def reset_service(self, name: str) -> None: ...
    def remove_service(self, name: str) -> None: ...   # its log fd, sockets, series, histories
    def console_line(self, name: str, text: str) -> None: ...   # the supervisor's line about it
    def console_last_lines(self, name: str, lines: list[str]) -> None: ...   # a failed build's
    def release_sockets(self, name: str) -> None: ...
    def held_ports(self) -> set[tuple[str, int]]: ...
    def hide_secrets(self) -> None: ...

    # systemd and the notify socket
    def systemd_watchdog_interval(self) -> float | None: ...
    def signal_systemd(self, message: str) -> None: ...
    def release_barrier(self, fd: int) -> None: ...
