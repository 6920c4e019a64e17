"""Scripted histories the end-to-end suite can reach only by luck or by flooding: the
circuit breaker, two events in one batch, a reload in the middle of a rolling restart, and
the order of a shutdown. Each runs on a fake clock, in milliseconds."""

import signal

from core.fakes import ROLLING, Owner
from unified_system.config.loader import as_records, load_config
from unified_system.core.events import Command, ConfigLoaded, Signal

CIRCUIT = """
services:
  svc:
    command: ["sleep", "1000"]
    restart: {backoff: {initial: 0s}, max_restarts: 2, window: 60s, cooldown: 5s, reset_after: 10s}
"""


def test_the_circuit_opens_when_the_budget_is_spent_then_half_opens_after_cooldown(tmp_path):
    o = Owner(tmp_path, CIRCUIT)
    for _ in range(2):
        o.turn(o.exit("svc"))
        assert o.state("svc") == "running"       # backoff 0: at once
    o.turn(o.exit("svc"))
    assert o.state("svc") == "fatal" and o.unit("svc").circuit == "open"
    assert o.events("circuit_open")
    spawned = len(o.fx.spawns())
    o.advance(4.9)
    assert o.state("svc") == "fatal" and len(o.fx.spawns()) == spawned
    o.advance(0.2)                                # cooldown over: one trial spawn
    assert o.state("svc") == "running" and o.unit("svc").circuit == "half-open"
    o.turn(o.exit("svc"))                         # the trial fails: open again, no retry
    assert o.state("svc") == "fatal" and o.unit("svc").circuit == "open"
    o.advance(5.1)
    o.advance(10.1)                               # the trial stays up reset_after: closed
    assert o.state("svc") == "running" and o.unit("svc").circuit == "closed"
    assert o.events("recovered")


def test_a_stop_and_an_exit_in_one_batch_stop_the_service(tmp_path):
    o = Owner(tmp_path, CIRCUIT)
    o.turn(Command("stop", "svc"), o.exit("svc", code=1))
    assert o.state("svc") == "stopped" and len(o.fx.spawns()) == 1
    o.advance(30)
    assert o.state("svc") == "stopped" and len(o.fx.spawns()) == 1


def test_an_exit_and_a_stop_in_one_batch_stop_the_service(tmp_path):
    o = Owner(tmp_path, CIRCUIT)
    o.turn(o.exit("svc", code=1), Command("stop", "svc"))
    o.advance(1)
    assert o.state("svc") == "stopped"
    assert all(d[0] != "signal" for d in o.fx.did)  # nothing left to signal


def _ready_all(o):
    for unit in o.sup.table.units["svc"]:
        if unit.state.value == "starting":
            o.turn(o.probe("svc", "readiness", True, o.sup.table.units["svc"].index(unit)))


def test_a_rolling_restart_starts_the_new_before_it_stops_the_old(tmp_path):
    o = Owner(tmp_path, ROLLING)
    old = [u.pid for u in o.sup.table.units["svc"]]
    o.turn(Command("restart", "svc"))
    assert len(o.fx.spawns()) == 4                 # both new incarnations beside the old ones
    assert not o.fx.signals()                      # nobody is signalled before proof
    o.advance(0.5)
    assert not o.fx.signals()
    o.advance(0.6)                                 # min_ready over: the old ones drain
    assert {d[1] for d in o.fx.signals()} == set(old)
    for unit in [u for u in o.sup.table.units["svc"] if u.pid in old]:
        o.turn(o.exit("svc", sig=signal.SIGTERM, index=o.sup.table.units["svc"].index(unit)))
    units = o.sup.table.units["svc"]
    assert len(units) == 2 and all(u.state.value == "running" for u in units)
    assert not {u.pid for u in units} & set(old)
    assert [e["result"] for e in o.events("rollout")].count("proven") == 2


def test_a_reload_in_the_middle_of_a_rolling_restart_leaves_two_running(tmp_path):
    o = Owner(tmp_path, ROLLING)
    old = {u.pid for u in o.sup.table.units["svc"]}
    o.turn(Command("restart", "svc"))
    assert len(o.sup.table.units["svc"]) == 4
    changed = tmp_path / "next.yaml"
    changed.write_text(f"supervisor:\n  state_dir: {tmp_path / 'state'}\n"
                       + ROLLING.replace('"1000"', '"2000"'))
    o.turn(ConfigLoaded(as_records(load_config(changed))))
    for _ in range(40):                            # let it settle: exits as the fake sees them
        for index, unit in enumerate(o.sup.table.units["svc"]):
            if unit.state.value == "stopping":
                o.turn(o.exit("svc", sig=signal.SIGTERM, index=index))
                break
        o.advance(0.5)
    units = o.sup.table.units["svc"]
    assert len(units) == 2, [(u.pid, u.state) for u in units]
    assert all(u.state.value == "running" for u in units)
    assert all(u.run_spec.command[1] == "2000" for u in units)
    assert not {u.pid for u in units} & old


CHAIN = """
services:
  db:
    command: ["sleep", "1000"]
  app:
    command: ["sleep", "1000"]
    depends_on: [db]
  web:
    command: ["sleep", "1000"]
    depends_on: [app]
"""


def test_shutdown_stops_dependents_before_what_they_depend_on(tmp_path):
    o = Owner(tmp_path, CHAIN)
    assert [d[1] for d in o.fx.spawns()] == ["db", "app", "web"]
    pgid = {name: o.unit(name).pgid for name in ("db", "app", "web")}
    o.turn(Signal(signal.SIGTERM))
    assert o.fx.signals() == [("signal", pgid["web"], "SIGTERM")]
    assert "STOPPING=1" in o.fx.systemd
    o.turn(o.exit("web", sig=signal.SIGTERM))
    assert o.fx.signals()[-1] == ("signal", pgid["app"], "SIGTERM")
    assert not o.sup.finished()
    o.turn(o.exit("app", sig=signal.SIGTERM))
    assert o.fx.signals()[-1] == ("signal", pgid["db"], "SIGTERM")
    o.turn(o.exit("db", sig=signal.SIGTERM))
    assert o.sup.finished()
    assert [o.state(n) for n in ("db", "app", "web")] == ["stopped"] * 3
