"""Why a process is stopped or restarted: one Enum, each member carrying what the owner
decides from it. It replaces three lists that lived in three files (policy.PLANNED,
watchdog.DUMP_REASONS, and a log-level tuple in lifecycle), where a mistyped reason became
an unplanned restart without a word; `Reason("mistyped")` raises ValueError instead, and
mypy checks every call that passes a Reason. No dependencies.
"""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    # In SPEC §4's order (the metrics' labels). Failures back off, count against the
    # budget and dump a crash record; planned ones (see _PLANNED) restart at once.
    CRASH = "crash"
    LIVENESS = "liveness"
    FREEZE = "freeze"
    MEMORY = "memory"
    WATCH = "watch"
    RELOAD = "reload"
    DEPENDENCY = "dependency"
    MANUAL = "manual"
    NOTIFY = "notify"            # a failure: the child asked (WATCHDOG=trigger)
    STOP = "stop"                # an end that is no restart
    ROLLOUT_FAILED = "rollout failed"   # the new incarnation of an aborted rolling restart

    def __str__(self) -> str:
        return self.value

    @property
    def planned(self) -> bool:
        """No failure: restarted at once (no backoff, no budget), rolling when it can."""
        return self in _PLANNED

    @property
    def dumps(self) -> bool:
        """A crash record is written when a process ends for this reason."""
        return self in _DUMPS

    def log_level(self, ok: bool) -> str:
        """The level of the "exited" record: a failure that did not exit 0 is a warning."""
        return "warning" if self in _WARNS and not ok else "info"

    @classmethod
    def of(cls, text: str | None, default: Reason | None = None) -> Reason | None:
        """The Reason a stored string names (state.json, last_exit); `default` for None."""
        return default if text is None else cls(text)


_PLANNED = frozenset({Reason.MANUAL, Reason.RELOAD, Reason.WATCH, Reason.DEPENDENCY})
_DUMPS = frozenset({Reason.CRASH, Reason.FREEZE, Reason.MEMORY, Reason.LIVENESS, Reason.NOTIFY})
_WARNS = frozenset({Reason.CRASH, Reason.FREEZE, Reason.MEMORY, Reason.LIVENESS})

#: every reason a process ends with (SPEC §4 `last_exit.reason`) that a restart can carry
EXIT_REASONS = tuple(r.value for r in Reason if r is not Reason.ROLLOUT_FAILED)
