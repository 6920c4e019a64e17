"""Service states (SPEC §4) and the table of allowed transitions.

No dependencies on purpose: this table is the state machine, and a test walks every edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class State(str, Enum):
    DISABLED = "disabled"
    PENDING = "pending"      # waiting for dependencies (or for a spawn slot)
    BUILDING = "building"
    STARTING = "starting"    # spawned, not yet ready
    RUNNING = "running"      # alive, and ready if a readiness probe is set
    STOPPING = "stopping"
    STOPPED = "stopped"      # by the operator or shutdown
    EXITED = "exited"        # ended and not to be restarted
    BACKOFF = "backoff"      # waiting to restart
    FATAL = "fatal"          # circuit open, build failed, or not startable

    def __str__(self) -> str:
        return self.value


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.DISABLED: frozenset({S.PENDING}),
    # -> BACKOFF: the spawn found descriptors, processes or memory scarce (EMFILE & co).
    S.PENDING: frozenset({S.BUILDING, S.STARTING, S.STOPPED, S.FATAL, S.DISABLED, S.BACKOFF}),
    S.BUILDING: frozenset({S.STARTING, S.STOPPED, S.FATAL, S.PENDING}),
    # -> STOPPED: the process ended on its own while a stop was already wanted.
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.STOPPED, S.BACKOFF, S.EXITED, S.FATAL,
                           S.PENDING}),
    S.RUNNING: frozenset({S.STOPPING, S.STOPPED, S.BACKOFF, S.EXITED, S.FATAL, S.PENDING}),
    S.STOPPING: frozenset({S.STOPPED, S.PENDING, S.BACKOFF, S.EXITED, S.FATAL}),
    S.STOPPED: frozenset({S.PENDING, S.DISABLED}),
    S.EXITED: frozenset({S.PENDING, S.STOPPED, S.DISABLED}),
    S.BACKOFF: frozenset({S.PENDING, S.STOPPED, S.FATAL, S.DISABLED}),
    S.FATAL: frozenset({S.PENDING, S.STOPPED, S.DISABLED}),
}

#: a process may exist in these states
ALIVE = frozenset({S.STARTING, S.RUNNING, S.STOPPING})
#: settled: nothing will happen without a command or a timer
AT_REST = frozenset({S.DISABLED, S.STOPPED, S.EXITED, S.FATAL})


class IllegalTransition(RuntimeError):
    """An edge missing from TRANSITIONS was taken: a bug in the owner, never user error."""


def check_transition(old: State, new: State) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"{old.value} -> {new.value}")


# When instances disagree, the service shows the state an operator most needs to see.
_PRIORITY = [S.FATAL, S.BACKOFF, S.STOPPING, S.BUILDING, S.STARTING, S.PENDING,
             S.RUNNING, S.EXITED, S.STOPPED, S.DISABLED]


def aggregate(states: Iterable[State]) -> State:
    present = set(states)
    for state in _PRIORITY:
        if state in present:
            return state
    return S.STOPPED
