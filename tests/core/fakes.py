"""FakeEffects and a fake clock: the owner driven in-process, turn by turn, in the style
of supervisord's DummyOptions and honcho's scripted histories. Nothing here starts a
process: a spawn is a number, an exit is an event the test posts."""

from __future__ import annotations

import errno
import queue
import signal
import subprocess
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_system.config.loader import as_records, load_config
from unified_system.core.events import Exited, ProbeResult
from unified_system.core.policy import ExitStatus
from unified_system.core.ports import Link
from unified_system.core.supervisor import Supervisor

# Two instances that roll: the new incarnation must stay ready 1 s before the old one stops.
ROLLING = """
services:
  svc:
    command: ["sleep", "1000"]
    instances: 2
    rollout: {min_ready: 1s, timeout: 10s}
"""


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class FakeSpawned:
    pid: int
    pgid: int


class FakeMetrics:
    """Every hook call, kept: ("restart", ("svc", "crash")), ..."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, hook: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((hook, args))


class FakeDumps:
    def __init__(self) -> None:
        self.jobs: list[Callable[[], None]] = []
        self.records: list[dict[str, Any]] = []

    def submit(self, job: Callable[[], None]) -> object:
        self.jobs.append(job)
        return None

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)


class FakeEffects:
    """Implements core/ports.py `Effects`; records what the owner did, in order."""

    def __init__(self, link: Link, state_dir: Path) -> None:
        self.link = link
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.metrics = FakeMetrics()
        self.dumps = FakeDumps()
        self.watcher = None
        self.did: list[tuple[Any, ...]] = []    # ("spawn", service, index, inc), ("signal", pgid, sig)
        self.alive: set[int] = set()            # live process groups
        self.jobs: list[Callable[[], None]] = []
        self.probes: list[tuple[str, int, str]] = []   # (service, inc, role) as watched
        self.watched: dict[tuple[int, str], float] = {}   # (inc, role) -> first delay, while probed
        self.systemd: list[str] = []
        self.scarce_builds = 0                  # how many build spawns fail with EMFILE
        self._pids = iter(range(5000, 10**6))

    # start and end
    def open(self) -> None: ...
    def open_late(self, then: Callable[[], None]) -> None: ...
    def open_api(self, facade: Any) -> None: ...
    def open_watcher(self) -> None: ...
    def close(self) -> None: ...

    def watch_signals(self, signums: Sequence[int], on_signal: Callable[[int], None]) -> dict[int, Any]:
        return {}

    # children
    def spawn(self, unit: Any, inc: int) -> FakeSpawned:
        pid = next(self._pids)
        self.alive.add(pid)
        self.did.append(("spawn", unit.service, unit.index, inc))
        return FakeSpawned(pid, pid)

    def spawn_build(self, name: str, digest: str, run: int) -> FakeSpawned:
        if self.scarce_builds:
            self.scarce_builds -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        pid = next(self._pids)
        self.did.append(("build", name, run))
        return FakeSpawned(pid, pid)

    def signal_group(self, pgid: int, sig: int) -> bool:
        self.did.append(("signal", pgid, signal.Signals(sig).name if sig else 0))
        return pgid in self.alive

    def signal_pid(self, pid: int, sig: signal.Signals) -> None:
        self.did.append(("signal_pid", pid, signal.Signals(sig).name))

    def group_alive(self, pgid: int) -> bool:
        return pgid in self.alive

    def watch_probe(self, unit: Any, role: str, probe: Any, delay: float) -> None:
        self.probes.append((unit.service, unit.inc, role))
        self.watched[(unit.inc, role)] = delay

    def forget_probes(self, inc: int, role: str | None = None) -> None:
        for key in [k for k in self.watched if k[0] == inc and role in (None, k[1])]:
            del self.watched[key]

    def explain_not_startable(self, unit: Any) -> str:
        return ""

    def service_line(self, name: str, text: str) -> None: ...

    def log_tail(self, name: str, lines: int) -> list[str]:
        return []

    def stop_leftovers(self, found: list[dict[str, Any]], timeout: float, log: Any) -> int:
        return len(found)

    def find_leftovers(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        return []

    def create_time(self, pid: int) -> float | None:
        return None

    def process_state(self, pid: int) -> str | None:
        return "S"

    def cpu_seconds(self, pid: int) -> float | None:
        return 0.0

    def inspect_frozen(self, pid: int, cpu: float | None) -> dict[str, Any]:
        return {"verdict": "idle (fake)"}

    # background work
    def submit(self, job: Callable[[], None]) -> object:
        self.jobs.append(job)
        return None

    def run_helper(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
                   cwd: str | None = None) -> subprocess.CompletedProcess[bytes]:
        raise AssertionError("no helper programs in the core tests")

    @property
    def crash_dumps(self) -> FakeDumps:
        return self.dumps

    # reload
    def add_service(self, name: str, width: int | None = None) -> None: ...
    def reset_service(self, name: str) -> None: ...
    def release_sockets(self, name: str) -> None: ...
    def remove_service(self, name: str) -> None: ...

    def console_line(self, name: str, text: str) -> None:
        self.did.append(("console", name, text))

    def console_last_lines(self, name: str, lines: list[str]) -> None: ...

    def held_ports(self) -> set[tuple[str, int]]:
        return set()

    def hide_secrets(self) -> None: ...

    # systemd, notify
    def systemd_watchdog_interval(self) -> float | None:
        return None

    def signal_systemd(self, message: str) -> None:
        self.systemd.append(message)

    def release_barrier(self, fd: int) -> None: ...

    # what the tests read
    def spawns(self, service: str | None = None) -> list[tuple[Any, ...]]:
        return [d for d in self.did if d[0] == "spawn" and (service is None or d[1] == service)]

    def signals(self) -> list[tuple[Any, ...]]:
        return [d for d in self.did if d[0] == "signal"]


class Owner:
    """A Supervisor over FakeEffects with a fake clock, driven one turn at a time."""

    def __init__(self, tmp_path: Path, yaml: str, supervisor: str = "") -> None:
        """`supervisor`: more keys of the supervisor section, one per line."""
        state = tmp_path / "state"
        path = tmp_path / "services.yaml"
        extra = "".join(f"  {line}\n" for line in supervisor.splitlines() if line.strip())
        path.write_text(f"supervisor:\n  state_dir: {state}\n{extra}" + textwrap.dedent(yaml))
        self.clock = FakeClock()
        self.fx: FakeEffects
        self.published: list[dict[str, Any]] = []

        def effects(link: Link) -> FakeEffects:
            self.fx = FakeEffects(link, state)
            return self.fx

        self.sup = Supervisor(as_records(load_config(path)), clock=self.clock, effects=effects)
        self.sup.strict = True    # a handler's bug fails the test
        self.sup.table.listeners.append(self.published.append)
        self.sup.table.early_events = None   # no API to open late: observers hear everything at once
        self.sup.effects.open()
        self.sup.start()

    def turn(self, *events: object) -> None:
        """Post `events`, then run one turn: they are applied as one batch."""
        for event in events:
            self.sup.post(event)
        try:   # what the test posted, and what fake workers posted (a job's BuildDone)
            first = self.sup._queue.get_nowait()
        except queue.Empty:
            first = None
        self.sup.turn(first)
        while self.sup.after_turn:   # as the loop does: side jobs after the turn's spawns
            self.sup.after_turn.pop(0)()

    def advance(self, seconds: float) -> None:
        """Move the clock on and run the turns whose timers fall due on the way."""
        end = self.clock.now + seconds
        while True:
            due = self.sup.timers.next_deadline()
            if due is None or due > end:
                break
            self.clock.now = max(self.clock.now, due)
            self.turn()
        self.clock.now = end
        self.turn()

    # the units and their processes
    def unit(self, service: str, index: int = 0) -> Any:
        return self.sup.table.units[service][index]

    def state(self, service: str, index: int = 0) -> str:
        return self.unit(service, index).state.value

    def exit(self, service: str, code: int | None = 1, sig: int | None = None, index: int = 0) -> Exited:
        """The event the I/O thread would post when the unit's process ends (its group empty)."""
        unit = self.unit(service, index)
        self.fx.alive.discard(unit.pgid)
        return Exited(unit.inc, ExitStatus(code=None if sig else code, signal=sig))

    def probe(self, service: str, role: str, ok: bool, index: int = 0) -> ProbeResult:
        return ProbeResult(self.unit(service, index).inc, role, ok, "fake", 0.001)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.published if e.get("type") == kind]
