"""Every restart path, driven in-process: scripted events in, transitions and effects out."""

import signal

from core.fakes import Owner
from unified_system.core.events import Command, FreezeProven, Notify, Samples

ONE = """
services:
  svc:
    command: ["sleep", "1000"]
    restart: {backoff: {initial: 1s, max: 1s, jitter: 0}}
"""


def test_crash_backs_off_then_restarts_with_a_new_incarnation(tmp_path):
    o = Owner(tmp_path, ONE)
    assert o.state("svc") == "running"   # no readiness: ready at spawn
    first = o.unit("svc").inc
    o.turn(o.exit("svc", code=3))
    assert o.state("svc") == "backoff"
    assert o.unit("svc").last_exit["reason"] == "crash"
    o.advance(0.5)
    assert o.state("svc") == "backoff" and len(o.fx.spawns()) == 1
    o.advance(0.6)
    assert o.state("svc") == "running" and len(o.fx.spawns()) == 2
    assert o.unit("svc").inc != first and o.unit("svc").restarts == 1
    assert o.events("restart")[-1]["reason"] == "crash"
    assert ("restart", ("svc", "crash")) in o.fx.metrics.calls
    assert o.fx.dumps.records and o.fx.dumps.records[0]["reason"] == "crash"


def test_a_late_exit_of_an_older_incarnation_is_dropped(tmp_path):
    o = Owner(tmp_path, ONE)
    stale = o.exit("svc", code=1)
    o.turn(stale)
    o.advance(1.1)
    assert o.state("svc") == "running"
    o.turn(stale)                    # the same exit again: it names the old incarnation
    assert o.state("svc") == "running" and len(o.fx.spawns()) == 2


def _restarted_by(o, reason):
    """A graceful restart: stop signal to the group, the exit, then a new spawn."""
    pgid = o.unit("svc").pgid
    assert o.state("svc") == "stopping"
    assert ("signal", pgid, "SIGTERM") in o.fx.did
    o.turn(o.exit("svc", sig=signal.SIGTERM))
    o.advance(1.1)                   # failures back off; planned restarts do not wait
    assert o.state("svc") == "running" and len(o.fx.spawns()) == 2
    assert o.unit("svc").exits[-1]["reason"] == reason


def test_liveness_failures_restart(tmp_path):
    o = Owner(tmp_path, """
        services:
          svc:
            command: ["sleep", "1000"]
            liveness: {tcp: {port: 9}, period: 1s, failure_threshold: 2}
            restart: {backoff: {initial: 1s, max: 1s, jitter: 0}}
    """)
    o.turn(o.probe("svc", "liveness", False))
    assert o.state("svc") == "running"
    o.turn(o.probe("svc", "liveness", False))
    _restarted_by(o, "liveness")


def test_memory_over_the_limit_restarts(tmp_path):
    o = Owner(tmp_path, """
        services:
          svc:
            command: ["sleep", "1000"]
            limits: {max_memory: 10MB}
            restart: {backoff: {initial: 1s, max: 1s, jitter: 0}}
    """)
    o.turn(Samples(((o.unit("svc").inc, 5_000_000),)))
    assert o.state("svc") == "running"
    o.turn(Samples(((o.unit("svc").inc, 50_000_000),)))
    _restarted_by(o, "memory")


def test_a_proven_freeze_sends_abrt_then_stops_the_group(tmp_path):
    o = Owner(tmp_path, """
        services:
          svc:
            command: ["sleep", "1000"]
            readiness: {notify: true}
            heartbeat: {timeout: 1s, hard_timeout: 2s}
            restart: {backoff: {initial: 1s, max: 1s, jitter: 0}}
    """)
    unit = o.unit("svc")
    o.turn(Notify(unit.inc, unit.pid, (("READY", "1"),), o.clock.now))
    assert o.state("svc") == "running"
    o.advance(1.5)
    assert unit.health == "frozen" and o.events("freeze")[-1]["kind"] == "soft"
    o.advance(1.0)
    assert o.events("freeze")[-1]["kind"] == "hard" and len(o.fx.dumps.jobs) == 1
    o.turn(FreezeProven(unit.inc, {"verdict": "idle"}))
    assert ("signal_pid", unit.pid, "SIGABRT") in o.fx.did
    assert ("signal", unit.pgid, "SIGCONT") in o.fx.did
    assert o.state("svc") == "stopping"
    o.turn(o.exit("svc", sig=signal.SIGABRT))
    o.advance(1.1)
    assert o.state("svc") == "starting" and len(o.fx.spawns()) == 2
    new = o.unit("svc")
    o.turn(Notify(new.inc, new.pid, (("READY", "1"),), o.clock.now))
    assert o.state("svc") == "running" and new.exits[-1]["reason"] == "freeze"
    assert o.fx.dumps.records[-1]["freeze"] == {"verdict": "idle"}


def test_an_operators_restart_is_planned_and_does_not_back_off(tmp_path):
    o = Owner(tmp_path, ONE)
    o.turn(Command("restart", "svc"))
    assert o.state("svc") == "stopping"
    o.turn(o.exit("svc", sig=signal.SIGTERM))
    assert o.state("svc") == "running" and len(o.fx.spawns()) == 2   # at once, no backoff
    assert o.unit("svc").restart_times == type(o.unit("svc").restart_times)()  # not a failure
    assert o.events("restart")[-1]["reason"] == "manual"


def test_a_stop_that_times_out_kills_the_group(tmp_path):
    o = Owner(tmp_path, """
        services:
          svc:
            command: ["sleep", "1000"]
            stop: {timeout: 2s}
    """)
    pgid = o.unit("svc").pgid
    o.turn(Command("stop", "svc"))
    assert o.state("svc") == "stopping"
    o.advance(1.9)
    assert ("signal", pgid, "SIGKILL") not in o.fx.did
    o.advance(0.2)
    assert ("signal", pgid, "SIGKILL") in o.fx.did
    o.turn(o.exit("svc", sig=signal.SIGKILL))
    assert o.state("svc") == "stopped"


def test_watchdog_trigger_from_the_child_restarts_it(tmp_path):
    o = Owner(tmp_path, ONE)
    unit = o.unit("svc")
    o.turn(Notify(unit.inc, unit.pid, (("WATCHDOG", "trigger"),), o.clock.now))
    _restarted_by(o, "notify")


def test_a_notify_from_an_older_incarnation_is_dropped(tmp_path):
    o = Owner(tmp_path, ONE)
    unit = o.unit("svc")
    stale = Notify(unit.inc, unit.pid, (("WATCHDOG", "trigger"),), o.clock.now)
    o.turn(o.exit("svc", code=1))
    o.advance(1.1)
    o.turn(stale)
    assert o.state("svc") == "running" and len(o.fx.spawns()) == 2
