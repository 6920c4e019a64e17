"""Pure pieces of a config reload: what changed, and how long a changed service may take.
Applying it is the owner's part (core/reloading.py); this module is pure: no state, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unified_system.config.schema import Service


@dataclass(frozen=True)
class Diff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "removed": list(self.removed),
                "changed": list(self.changed), "unchanged": list(self.unchanged)}


def diff_services(old: Mapping[str, Service], new: Mapping[str, Service]) -> Diff:
    """Frozen models compare by value, so 'changed' is plain inequality."""
    return Diff(
        added=tuple(sorted(set(new) - set(old))),
        removed=tuple(sorted(set(old) - set(new))),
        changed=tuple(sorted(n for n in set(old) & set(new) if old[n] != new[n])),
        unchanged=tuple(sorted(n for n in set(old) & set(new) if old[n] == new[n])),
    )


def start_window(spec: Service) -> float:
    """How long a restarted service may take to stop, build and become ready before a
    reload that changed it is rolled back."""
    window = spec.stop.timeout + 5.0
    for probe in (spec.startup, spec.readiness):
        if probe is not None:
            window += probe.initial_delay + probe.period * (probe.failure_threshold
                                                            + probe.success_threshold) + probe.timeout
    if spec.build is not None:
        window += spec.build.timeout
    return window


@dataclass
class PendingReload:
    """A reload whose changed services are still on their way up."""

    diff: Diff
    previous: dict[str, Service]
    deadlines: dict[str, float]
    reply: Future | None = None   # the reload command's, answered once all are up
    rolled_back: dict[str, str] = field(default_factory=dict)
