"""The state table: every listed edge is allowed, every other edge is a bug that raises."""

import pytest

from unified_system.core.states import (
    ALIVE,
    TRANSITIONS,
    IllegalTransition,
    State,
    aggregate,
    check_transition,
)

EDGES = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]
NON_EDGES = [(a, b) for a in State for b in State if b not in TRANSITIONS[a] and a is not b]


@pytest.mark.parametrize("old,new", EDGES, ids=[f"{a.value}->{b.value}" for a, b in EDGES])
def test_allowed_edge(old, new):
    check_transition(old, new)


@pytest.mark.parametrize("old,new", NON_EDGES, ids=[f"{a.value}-x->{b.value}" for a, b in NON_EDGES])
def test_illegal_edge_raises(old, new):
    with pytest.raises(IllegalTransition):
        check_transition(old, new)


def test_every_state_has_a_row_and_spec_names():
    assert set(TRANSITIONS) == set(State)
    assert {s.value for s in State} == {"disabled", "pending", "building", "starting", "running",
                                        "stopping", "stopped", "exited", "backoff", "fatal"}


def test_every_state_is_reachable_from_pending():
    seen, todo = {State.PENDING}, [State.PENDING]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(State)


@pytest.mark.parametrize("states,expected", [
    ([State.RUNNING, State.RUNNING], State.RUNNING),
    ([State.RUNNING, State.STARTING], State.STARTING),
    ([State.RUNNING, State.FATAL], State.FATAL),
    ([State.STOPPED, State.EXITED], State.EXITED),
    ([State.BACKOFF, State.RUNNING], State.BACKOFF),
])
def test_aggregate_shows_the_state_an_operator_needs(states, expected):
    assert aggregate(states) is expected


def test_alive_states():
    assert ALIVE == {State.STARTING, State.RUNNING, State.STOPPING}


def test_a_unit_write_bumps_its_version_so_the_snapshot_rebuilds_its_object():
    from types import SimpleNamespace

    from unified_system.core.unit import Unit

    unit = Unit("web", 0, SimpleNamespace())
    before = unit.version
    unit.note = "waiting for db (healthy)"
    assert unit.version == before + 1
    unit.timers["x"] = None          # in-place changes are not tracked: nothing observers read
    assert unit.version == before + 1


def test_notify_events_can_name_every_state():
    # schema.py lists them itself: the config child must not import the core
    from unified_system.config.schema import ALERT_EVENTS

    assert {s.value for s in State} <= set(ALERT_EVENTS)
