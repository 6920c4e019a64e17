"""Heartbeat deadlines fall on a 100 ms grid: many services' checks are one owner turn.

Before, each service's check fell due at its own last heartbeat + timeout: 100 services
beating every 0.5 s with a 5 s timeout woke the owner ~20 times a second for them alone.
"""

from core.fakes import Owner
from unified_system.core.events import Batch, Notify
from unified_system.core.policy import HEARTBEAT_HOLD
from unified_system.core.vitals import HB_GRID

BEATING = "services:\n" + "".join(f"""  s{i}:
    command: ["sleep", "1000"]
    heartbeat: {{timeout: 5s, hard_timeout: 20s}}
""" for i in range(10))


def deadlines(o):
    return {t.deadline for t in o.sup.timers._heap
            if not t.cancelled and "heartbeat" in t.action.__qualname__}


def test_staggered_heartbeats_share_their_check_deadlines(tmp_path):
    o = Owner(tmp_path, BEATING)
    for i in range(10):                       # 10 services' beats, 9 ms apart
        unit = o.unit(f"s{i}")
        o.turn(Batch((Notify(unit.inc, unit.pid, (("WATCHDOG", "1"),), o.clock()),)))
        o.clock.now += 0.009
    o.advance(5.2)                            # the first checks fire and re-arm
    due = deadlines(o)
    assert len(due) <= 2, sorted(due)         # one each before: 10
    assert all(abs(d / HB_GRID - round(d / HB_GRID)) < 1e-6 for d in due)


def test_a_freeze_is_seen_after_the_listeners_hold_and_within_one_grid_step(tmp_path):
    o = Owner(tmp_path, BEATING)
    unit = o.unit("s0")
    o.turn(Notify(unit.inc, unit.pid, (("WATCHDOG", "1"),), o.clock()))
    o.advance(5.0 + HEARTBEAT_HOLD - 0.01)   # a beat on time may still be held by the listener
    assert unit.health != "frozen"
    o.advance(0.01 + HB_GRID)
    assert unit.health == "frozen"
