"""What every part of the owner shares: the state the owner thread holds, and the methods
its parts call on one another.

The owner is one object, `Supervisor` (supervisor.py), cut by concern into mixins
(lifecycle, commands, reloading; persistence, probing, vitals and builds are
collaborators of their own: core/persistence.py, probing.py, vitals.py, builds.py). Each mixin
inherits `Owner`, so it reads, and type-checks, as a part of that one object. The state is
set in `Supervisor.__init__`; the methods below are declared for the type checker only and
defined by the part named beside each.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Iterator
from types import EllipsisType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unified_system.config.view import ConfigRecord, LoadedConfig
    from unified_system.core.builds import Builds
    from unified_system.core.events import Command
    from unified_system.core.ports import Effects
    from unified_system.core.probing import Probing
    from unified_system.core.reasons import Reason
    from unified_system.core.reload_diff import PendingReload
    from unified_system.core.states import State
    from unified_system.core.timers import TimerHeap
    from unified_system.core.unit import Unit
    from unified_system.core.vitals import Vitals


class Owner:
    loaded: LoadedConfig
    config: ConfigRecord              # records (config/view.py): the owner never holds pydantic
    clock: Callable[[], float]
    log: Any                          # a structlog BoundLogger
    runtime: Effects
    units: dict[str, list[Unit]]
    probing: Probing
    vitals: Vitals
    _timers: TimerHeap
    _rand: random.Random
    _incs: Iterator[int]
    _by_inc: dict[int, Unit]          # incarnation -> its unit
    _pid_map: dict[int, int]          # main pid -> incarnation; replaced, never mutated
    _deps: dict[str, tuple[str, ...]]
    _dependents: dict[str, set[str]]
    _order: list[str]
    builds: Builds
    _debounce: dict[str, Any]
    _reload: PendingReload | None
    _reload_parsing: bool
    _removing: set[str]
    _after_turn: list[Callable[[], None]]
    _stale_pending: bool
    _reconcile_due: bool
    _dirty: bool
    _retiring: bool
    _shutting_down: bool
    _exit_code: int

    if TYPE_CHECKING:
        # supervisor.py
        def post(self, event: object) -> None: ...
        def _transition(self, unit: Unit, new: State, reason: str | None = None,
                        note: str | None = None, **extra: Any) -> None: ...
        def _publish(self, event: dict[str, Any]) -> None: ...
        def _stale_soon(self) -> None: ...

        # lifecycle.py
        def _became_ready(self, unit: Unit) -> None: ...
        def _stop(self, unit: Unit, reason: Reason,
                  sig: signal.Signals | None | EllipsisType = ...,
                  grace: float | None = None) -> None: ...
        def _kill(self, unit: Unit, inc: int) -> None: ...
        def _kill_leftovers(self, pgid: int) -> None: ...
        def _half_open(self, unit: Unit) -> None: ...

        # commands.py
        def shutdown(self) -> None: ...
        def _restart(self, unit: Unit, reason: Reason) -> None: ...

        # rollout.py
        def _roll(self, unit: Unit, reason: Reason) -> None: ...
        def _prove(self, new: Unit) -> None: ...
        def _roll_over(self, new: Unit) -> None: ...
        def _abort_rollout(self, new: Unit, why: str, exit_: dict[str, Any] | None = None) -> None: ...
        def _end_rollout(self, new: Unit) -> Unit | None: ...

        # reloading.py
        def _cmd_reload(self, cmd: Command) -> object: ...
