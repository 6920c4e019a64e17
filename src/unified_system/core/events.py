"""Everything other threads tell the owner. Frozen: an event is a fact, never shared state."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from unified_system.core.policy import ExitStatus


@dataclass(frozen=True)
class Exited:
    inc: int
    status: ExitStatus


@dataclass(frozen=True)
class Notify:
    inc: int
    pid: int
    fields: tuple[tuple[str, str], ...]
    at: float | None = None   # monotonic arrival time, stamped by the listener


@dataclass(frozen=True)
class Batch:
    """Several events in one hand-off: a thread that sees many at once wakes the owner once."""

    events: tuple


@dataclass(frozen=True)
class ProbeResult:
    inc: int
    role: str          # readiness | liveness | startup (the check's type is Probe.kind)
    ok: bool
    detail: str
    duration: float


@dataclass(frozen=True)
class Signal:
    signum: int


class Refused(RuntimeError):
    """The owner's answer to a command it will not carry out now (API: 409)."""


@dataclass(frozen=True)
class Command:
    """An operator's request (CLI, API, signal). `reply` receives the outcome."""

    action: str                 # start | stop | restart | reload | shutdown | heartbeat
    service: str | None = None
    args: tuple[tuple[str, Any], ...] = ()
    reply: Future | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Samples:
    """Tree RSS of watched incarnations (None: gone)."""

    readings: tuple[tuple[int, int | None], ...]


@dataclass(frozen=True)
class HostAlert:
    what: str          # cpu | memory | disk
    percent: float


@dataclass(frozen=True)
class FreezeProven:
    """The inspection of a hard-frozen incarnation is done: act on it."""

    inc: int
    report: dict = field(compare=False, hash=False)


@dataclass(frozen=True)
class BuildDone:
    """ok None: the inputs changed and the command must run; True/False: the build's outcome."""

    service: str
    ok: bool | None
    detail: str
    digest: str
    skipped: bool
    run: int = 0  # which build: a late answer of a cancelled one is ignored


CONFIG_KEY = "\0config"   # FileChanged.key of the supervisor's own config: no service's name


@dataclass(frozen=True)
class FileChanged:
    key: str           # a service name, or CONFIG_KEY for the supervisor's own config
    path: str


@dataclass(frozen=True)
class ConfigLoaded:
    """The worker parsed services.yaml for a reload: `loaded`, or the `errors` exception."""

    loaded: Any = field(compare=False)
    errors: Exception | None = field(default=None, compare=False)
    reply: Future | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LateImported:
    """The API, metrics, sampler and watcher modules are loaded, off the owner: open them."""


@dataclass(frozen=True)
class Barrier:
    """sd_notify BARRIER=1: close `fd` once what came before it is handled (end of the turn)."""

    fd: int


@dataclass(frozen=True)
class NotifyRefused:
    """A notify datagram from a sender in no service's tree (reported once per sender)."""

    pid: int
    keys: tuple[str, ...]     # the message's keys only: a value may be a secret
    last: bool = False        # too many refused senders: later ones go unreported
