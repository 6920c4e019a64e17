"""Placeholder until the control-plane issue lands: the owner's metric hooks, as no-ops."""

from __future__ import annotations

from typing import Any


class Metrics:
    def __init__(self, sup: Any) -> None:
        self.sup = sup

    def restart(self, service: str, reason: str) -> None:
        """A process of `service` was restarted for `reason` (SPEC §4 reasons)."""

    def probe(self, service: str, kind: str, duration: float) -> None:
        """One probe attempt finished."""

    def freeze(self, service: str, kind: str) -> None:
        """A soft or hard freeze was detected."""

    def reload(self, result: str) -> None:
        """A config reload finished: success | failure."""
