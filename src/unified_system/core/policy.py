"""Pure restart decisions. Every function takes `now` (monotonic seconds) where time matters."""

from __future__ import annotations

import errno as _errno
import os
import signal as _signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: exactly one of `code` or `signal` is set."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def signal_name(self) -> str | None:
        return signal_name(self.signal) if self.signal is not None else None

    def describe(self) -> str:
        return f"killed by {self.signal_name}" if self.signal is not None else f"exit code {self.code}"



def signal_name(signum: int) -> str:
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


#: exit codes that mean "could not run at all": retrying cannot help
NOT_STARTABLE = frozenset({126, 127})
#: a spawn that failed for want of descriptors, processes or memory: the program is not at
#: fault, and the kernel may have them again in a moment (a flood of connections ends)
SCARCE = frozenset({_errno.EMFILE, _errno.ENFILE, _errno.EAGAIN, _errno.ENOMEM})
#: retry delays of a spawn that found resources scarce: short, as the program is fine
SCARCE_BACKOFF = (0.25, 2.0)
#: restart reasons, planned or not, and which dump a crash: core/reasons.py `Reason`
from unified_system.core.reasons import EXIT_REASONS  # noqa: E402,F401  (api/metrics reads it here)


def scarce(exc: BaseException | None) -> bool:
    """Whether a spawn failure (or what caused it, as SpawnError wraps the OSError) is a
    scarce resource: retried with backoff, never `fatal`."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in SCARCE:
            return True
        exc = exc.__cause__
    return False


def should_restart(policy: str, status: ExitStatus) -> bool:
    if policy == "always":
        return True
    if policy == "on-failure":
        return not status.ok
    return False


def next_delay(attempt: int, initial: float, maximum: float, multiplier: float,
               jitter: float, rand: float) -> float:
    """Delay before restart number `attempt` (1-based) of a run of failures.

    `rand` in [0, 1) is injected so the function stays pure; jitter spreads the delay by
    +/- jitter*delay so a fleet of crashed children does not restart in lockstep.
    """
    if attempt <= 0 or initial <= 0:
        return 0.0
    base = min(maximum, initial * multiplier ** (attempt - 1))
    return max(0.0, base * (1.0 + jitter * (2.0 * rand - 1.0)))


def recent(times: Iterable[float], now: float, window: float) -> list[float]:
    """The restart times still inside the sliding window."""
    return [t for t in times if now - t < window]


def budget_spent(times: Sequence[float], now: float, window: float, max_restarts: int) -> bool:
    """OTP-style intensity: more than `max_restarts` restarts within `window` seconds."""
    return len(recent(times, now, window)) > max_restarts


def classify_exit(status: ExitStatus, requested: bool, rss: int | None, limit: int | None) -> str:
    """A plain-words account of an exit, for logs and crash dumps."""
    text = status.describe()
    if status.code in NOT_STARTABLE:
        return text + (": not executable" if status.code == 126 else ": command not found")
    if status.signal == _signal.SIGKILL and not requested:
        if limit and rss and rss >= 0.9 * limit:
            return text + " near its memory limit, probably out of memory"
        return text + " (by another process, or the kernel's OOM killer)"
    if status.signal == _signal.SIGABRT:
        return text + " (aborted)"
    if status.signal == _signal.SIGSEGV:
        return text + " (segmentation fault)"
    return text


MAX_EXTEND = 86400.0          # seconds: the most a child's EXTEND_TIMEOUT_USEC may add
# A batch of bare WATCHDOG=1 datagrams may wait this long in the notify listener for the
# next (one owner turn for many services' heartbeats); anything else goes at once, taking
# the held heartbeats with it. The heartbeat checks allow for it (core/vitals.py).
HEARTBEAT_HOLD = 0.1


def usec_seconds(text: str, ceiling: float) -> float | None:
    """A child's microsecond count in seconds, at most `ceiling`; None if it is not one.

    Digits only, as systemd's safe_atou64 reads them: no sign, no exponent, no nan or inf."""
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    if len(text) > 18:           # beyond any ceiling; int() of 4,000 digits is wasted work
        return ceiling
    return min(int(text) / 1_000_000, ceiling)
