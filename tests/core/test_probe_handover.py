"""The owner hands each incarnation's probes to the prober once, and takes them back.

Before, the owner armed a timer per attempt and handed over each attempt (100 services probed
twice a second: 200 timers and hand-offs a second, most of its work). The attempts now
repeat on the prober's thread (probes/plans.py); the owner only starts and stops them.
"""

from core.fakes import Owner

PROBED = """
services:
  svc:
    command: ["sleep", "1000"]
    readiness: {http: {url: "http://127.0.0.1:9/"}, period: 1s, initial_delay: 2s}
    liveness: {tcp: {port: 9}, period: 1s, failure_threshold: 2}
    restart: {backoff: {initial: 1s, max: 1s, jitter: 0}}
"""

STARTUP = """
services:
  svc:
    command: ["sleep", "1000"]
    startup: {tcp: {port: 9}, period: 1s}
    liveness: {tcp: {port: 9}, period: 1s, initial_delay: 3s}
"""


def test_each_probe_is_handed_over_once_and_no_timer_is_armed_per_attempt(tmp_path):
    o = Owner(tmp_path, PROBED)
    inc = o.unit("svc").inc
    assert o.fx.watched == {(inc, "readiness"): 2.0, (inc, "liveness"): 0.0}
    timers = len(o.sup.timers)
    for _ in range(5):
        o.turn(o.probe("svc", "readiness", True), o.probe("svc", "liveness", True))
        o.advance(1.0)
    assert o.state("svc") == "running"
    assert len(o.fx.probes) == 2                 # handed over once each, never again
    assert len(o.sup.timers) <= timers           # no timer per attempt


def test_a_startup_pass_hands_over_to_liveness(tmp_path):
    o = Owner(tmp_path, STARTUP)
    inc = o.unit("svc").inc
    assert o.fx.watched == {(inc, "startup"): 0.0}
    o.turn(o.probe("svc", "startup", False))
    o.turn(o.probe("svc", "startup", True))
    assert o.fx.watched == {(inc, "liveness"): 3.0}
    o.turn(o.probe("svc", "startup", True))     # one in flight at the hand-over: ignored
    assert o.fx.watched == {(inc, "liveness"): 3.0}


def test_stop_and_exit_take_the_probes_back(tmp_path):
    o = Owner(tmp_path, PROBED)
    first = o.unit("svc").inc
    o.turn(o.exit("svc", code=1))                # died by itself
    assert not o.fx.watched
    o.advance(1.1)
    second = o.unit("svc").inc
    assert second != first and set(o.fx.watched) == {(second, "readiness"), (second, "liveness")}
    o.turn(o.probe("svc", "liveness", False), o.probe("svc", "liveness", False))
    assert o.state("svc") == "stopping"          # liveness restart: its probes stop at once
    assert not o.fx.watched
