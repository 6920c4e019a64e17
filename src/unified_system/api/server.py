"""Placeholder until the control-plane issue lands."""

from __future__ import annotations

from typing import Any


class ControlPlane:
    def __init__(self, sup: Any) -> None:
        self.sup = sup

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass
