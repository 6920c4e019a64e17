"""How the owner's collaborators are wired: the HANDLERS table covers every event, a
critical service's FATAL shuts everything down, a failed rollout rolls a reload back, and an
unknown event is an owner bug, not a silent drop."""

import dataclasses
import inspect
import signal
from concurrent.futures import Future

import pytest

from core.fakes import ROLLING, Owner
from unified_system.config.loader import as_records, load_config
from unified_system.core import events
from unified_system.core.events import Command, ConfigLoaded
from unified_system.core.reasons import Reason
from unified_system.core.supervisor import HANDLERS

ONE = """
services:
  svc:
    command: ["sleep", "1000"]
"""


def test_every_event_the_owner_can_be_posted_has_a_handler(tmp_path):
    posted = {cls for _, cls in inspect.getmembers(events, inspect.isclass)
              if dataclasses.is_dataclass(cls) and cls.__module__ == events.__name__}
    assert posted - {events.Batch} == set(HANDLERS)   # a Batch is unpacked by the loop itself
    o = Owner(tmp_path, ONE)
    for kind, on in HANDLERS.items():
        assert callable(o.sup._handlers[kind][0]), on.handler


def test_an_event_of_no_known_type_is_an_owner_bug_not_a_silent_drop(tmp_path):
    o = Owner(tmp_path, ONE)
    with pytest.raises(KeyError):            # strict in tests; counted and logged in production
        o.turn(object())
    o.sup.strict = False
    o.turn(object())
    assert o.sup.owner_errors == 1
    o.turn(o.exit("svc"))                    # and the owner goes on
    o.advance(5)                             # the crash's backoff
    assert len(o.fx.spawns("svc")) == 2 and o.state("svc") == "running"


def test_a_mistyped_reason_is_refused_not_taken_for_a_crash():
    with pytest.raises(ValueError):
        Reason("liveliness")
    assert Reason("liveness").dumps and not Reason("liveness").planned
    assert Reason("manual").planned and not Reason("manual").dumps


CRITICAL = """
services:
  db:
    command: ["sleep", "1000"]
    critical: true
    restart: {backoff: {initial: 0s}, max_restarts: 0, window: 60s}
  web:
    command: ["sleep", "1000"]
"""


def test_a_critical_service_gone_fatal_leaves_the_rest_running_by_default(tmp_path):
    o = Owner(tmp_path, CRITICAL, supervisor="exit_on_critical_failure: false")
    o.turn(o.exit("db"))
    assert o.state("db") == "fatal" and o.state("web") == "running"
    assert not o.sup.table.shutting_down


def test_exit_on_critical_failure_stops_everything_with_exit_code_1(tmp_path):
    o = Owner(tmp_path, CRITICAL, supervisor="exit_on_critical_failure: true")
    web = o.unit("web").pgid
    o.turn(o.exit("db"))
    assert o.state("db") == "fatal"
    assert o.sup.table.shutting_down and o.sup.commands.exit_code == 1
    assert ("signal", web, "SIGTERM") in o.fx.signals()
    o.turn(o.exit("web", sig=signal.SIGTERM))
    assert o.sup.finished()


def test_a_reload_whose_rollout_fails_rolls_the_service_back(tmp_path):
    o = Owner(tmp_path, ROLLING)
    old = {u.pid for u in o.sup.table.units["svc"]}
    changed = tmp_path / "next.yaml"
    changed.write_text(f"supervisor:\n  state_dir: {tmp_path / 'state'}\n"
                       + ROLLING.replace('"1000"', '"2000"'))
    reply: Future = Future()
    o.turn(ConfigLoaded(as_records(load_config(changed)), None, reply))
    new = [u for u in o.sup.table.units["svc"] if u.pid not in old]
    assert len(new) == 2                          # the new incarnations, beside the old ones
    o.turn(o.exit("svc", code=3, index=o.sup.table.units["svc"].index(new[0])))
    for unit in o.sup.table.units["svc"]:
        if unit.state.value == "stopping":
            o.turn(o.exit("svc", sig=signal.SIGTERM, index=o.sup.table.units["svc"].index(unit)))
    o.advance(1)
    assert reply.done() and reply.result()["result"] == "rolled_back"
    assert "svc" in reply.result()["rolled_back"]
    running = [u for u in o.sup.table.units["svc"] if u.state.value == "running"]
    assert {u.pid for u in running} == old        # the old ones never stopped serving
    assert o.sup.table.config.services["svc"].command[1] == "1000"
    assert [e["result"] for e in o.events("rollout")].count("failed") >= 1


def test_an_operator_command_for_no_service_is_answered_with_an_error(tmp_path):
    o = Owner(tmp_path, ONE)
    for cmd in (Command("restart", reply=Future()), Command("start", "nope", reply=Future()),
                Command("dance", "svc", reply=Future())):
        o.turn(cmd)
        assert cmd.reply is not None and cmd.reply.exception() is not None
    assert o.state("svc") == "running"
