"""What observers read: the published service objects. A heartbeat, which arrives hundreds
of times a second, changes only the heartbeat fields: they are patched into the object,
which is otherwise reused, not rebuilt."""

from core.fakes import Owner
from unified_system.core.events import Notify

BEATING = """
services:
  beat:
    command: ["sleep", "1000"]
    heartbeat: {timeout: 10s}
  quiet:
    command: ["sleep", "1000"]
"""


def _objects(o: Owner) -> dict:
    return {obj["name"]: obj for obj in o.sup.snapshots.services}


def test_a_heartbeat_patches_its_fields_into_the_object_without_a_rebuild(tmp_path):
    o = Owner(tmp_path, BEATING)
    o.advance(0.5)
    before = _objects(o)
    unit = o.unit("beat")
    o.turn(Notify(unit.inc, unit.pid, (("WATCHDOG", "1"),)))
    o.advance(1.1)                                  # heartbeat stamps are published <= 1 s late
    after = _objects(o)
    assert after["beat"]["heartbeat_at"] is not None
    assert after["beat"]["heartbeat_at"] != before["beat"]["heartbeat_at"]
    assert after["beat"]["instances"] is before["beat"]["instances"]   # patched, not rebuilt
    assert after["quiet"] is before["quiet"]
    assert after["beat"]["heartbeat_age_seconds"] is not None and after["beat"]["heartbeat_age_seconds"] < 2


def test_a_change_of_state_still_rebuilds_the_object(tmp_path):
    o = Owner(tmp_path, BEATING)
    before = _objects(o)
    o.turn(o.exit("beat"))
    after = _objects(o)
    assert after["beat"]["state"] == "backoff" and before["beat"]["state"] == "running"
    assert after["beat"]["instances"] is not before["beat"]["instances"]
