"""The control plane's pure parts, without a supervisor: routing, keys, scrubbing, the SSE
hub, suggestion rules, diagnostics grades, live figures."""

from __future__ import annotations

import os
import stat
import subprocess
import time
import types

import pytest

from unified_system.api.auth import Scrubber, is_loopback, load_or_create_key, same
from unified_system.api.diagnostics import grade
from unified_system.api.exposition import label_value, num
from unified_system.api.live import LiveStats, tree_pids, with_live
from unified_system.api.routes import ApiError, command, route
from unified_system.api.sse import EventHub
from unified_system.api.suggestions import History, exits, suggest


@pytest.mark.parametrize("parts,expected", [
    (["health"], ("health", ("GET",), None)),
    (["metrics"], ("metrics", ("GET",), None)),
    (["api", "services"], ("services", ("GET",), None)),
    (["api", "services", "web"], ("service", ("GET",), "web")),
    (["api", "services", "web", "restart"], ("action:restart", ("POST",), "web")),
    (["api", "services", "web", "heartbeat"], ("heartbeat", ("POST",), "web")),
    (["api", "services", "web", "logs"], ("logs", ("GET",), "web")),
    (["api", "reload"], ("reload", ("POST",), None)),
    (["api", "services", "../x", "logs"], ("logs", ("GET",), "../x")),   # then 404 by name
    (["api", "services", "web", "logs", "x"], None),
    (["api"], None),
    (["etc", "passwd"], None),
])
def test_routes(parts, expected):
    assert route(parts) == expected


def test_key_file_created_0600_and_reused(tmp_path):
    key = load_or_create_key(tmp_path / "state")
    path = tmp_path / "state" / "api_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) >= 40
    assert load_or_create_key(tmp_path / "state") == key
    assert [p.name for p in path.parent.iterdir()] == ["api_key"]   # no temp file left


def test_constant_time_compare_rejects_empty():
    assert same("abc", "abc") and not same("abc", "abd")
    assert not same(None, "abc") and not same("", "") and not same("abc", "")


def test_scrubber_replaces_values_longest_first():
    s = Scrubber(["secret-value", "secret-value-longer", "short"])
    assert s.text("x secret-value-longer y secret-value") == "x *** y ***"
    # A value under 6 characters is replaced where it stands as a whole token only.
    assert s.text("a short word, shortly") == "a *** word, shortly"


def test_sse_hub_drops_a_full_subscriber_without_blocking():
    hub = EventHub(size=3)
    slow, fast = hub.subscribe(None), hub.subscribe(None)
    for i in range(3):
        hub.on_event({"type": "state", "service": "a", "at": float(i)})
    fast.queue.get_nowait()
    started = time.monotonic()
    hub.on_event({"type": "state", "service": "a", "at": 9.0})
    assert time.monotonic() - started < 2.0   # it does not block; loose for a loaded VM
    assert slow.dropped and not fast.dropped and hub.count == 1 and hub.dropped_total == 1


def test_sse_stream_writes_keepalives_and_ends_on_close():
    hub = EventHub()
    sub = hub.subscribe(None)
    written: list[bytes] = []

    def write(data: bytes) -> None:
        written.append(data)
        if data.startswith(b": keep-alive"):
            hub.on_event({"type": "probe", "service": "a", "ok": False, "detail": "x",
                          "token": "t0ken", "at": 1.0})
            hub.close()
    hub.stream(sub, b"event: snapshot\ndata: {}\n\n", write, keepalive=0.01)
    assert written[0].startswith(b"event: snapshot") and written[1] == b": keep-alive\n\n"
    assert written[2].startswith(b"event: probe\ndata: {") and b'"token":"***"' in written[2]
    assert hub.count == 0


def history_of(events):
    h = History()
    for ev in events:
        h.on_event(ev)
    return h


def crash_cycle(at, lived, reason="crash"):
    return [{"type": "state", "service": "a", "state": "starting", "previous": "pending", "at": at},
            {"type": "state", "service": "a", "state": "running", "previous": "starting", "at": at},
            {"type": "state", "service": "a", "state": "backoff", "previous": "running",
             "reason": reason, "at": at + lived}]


def spec(**over):
    base = dict(limits=None, readiness=None, liveness=None, startup=None, heartbeat=None)
    return types.SimpleNamespace(**{**base, **over})


def snap(**over):
    return ({"name": "a", "state": "backoff", "circuit": "closed", "last_exit": None, **over},)


def rules(history, snapshot, service, tmp_path, peak=None):
    return {s["rule"]: s for s in suggest(history, snapshot, {"a": service}, tmp_path,
                                          peak or {}, lambda x: x)}


def test_exits_measure_each_life():
    ends = exits(crash_cycle(10.0, 0.5) + crash_cycle(20.0, 30.0))
    assert [(e["reason"], e["lived"]) for e in ends] == [("crash", 0.5), ("crash", 30.0)]


def test_crash_on_every_start_suggests_a_config_error(tmp_path):
    (tmp_path / "a.log").write_text("starting\nError: DATABASE_URL is not set\nbye\n")
    h = history_of(sum((crash_cycle(i * 10.0, 0.2) for i in range(3)), []))
    found = rules(h, snap(), spec(), tmp_path)
    assert found["crash_on_start"]["evidence"]["last_error"] == "Error: DATABASE_URL is not set"
    # one long life among the crashes: not a start-up problem
    h = history_of(sum((crash_cycle(i * 10.0, 0.2) for i in range(3)), []) + crash_cycle(50, 60))
    assert "crash_on_start" not in rules(h, snap(), spec(), tmp_path)


def test_memory_rules(tmp_path):
    limits = types.SimpleNamespace(max_memory=100_000_000)
    h = history_of(crash_cycle(0, 100, "memory") + crash_cycle(200, 100, "memory"))
    assert "memory_limit" in rules(h, snap(), spec(limits=limits), tmp_path)
    killed = snap(last_exit={"code": None, "signal": "SIGKILL", "reason": "crash", "at": 1.0})
    assert "memory_limit" in rules(History(), killed, spec(limits=limits), tmp_path,
                                   {"a": 90_000_000})
    assert "memory_limit" not in rules(History(), killed, spec(limits=limits), tmp_path,
                                       {"a": 10_000_000})


def test_probe_freeze_and_circuit_rules(tmp_path):
    probe = types.SimpleNamespace(timeout=1.0, period=1.0)
    fails = [{"type": "probe", "service": "a", "probe": "readiness", "ok": False,
              "detail": "connection refused", "at": float(i)} for i in range(3)]
    freezes = [{"type": "freeze", "service": "a", "kind": "soft", "at": float(i)} for i in range(2)]
    found = rules(history_of(fails + freezes), snap(circuit="open"),
                  spec(readiness=probe, heartbeat=types.SimpleNamespace(timeout=5.0)), tmp_path)
    assert found["readiness_failing"]["evidence"]["last_detail"] == "connection refused"
    assert found["soft_freezes"]["evidence"]["timeout"] == 5.0
    assert "circuit_open" in found
    for s in found.values():
        assert set(s) == {"rule", "service", "message", "evidence"}


def test_history_is_bounded():
    h = History(size=5)
    for i in range(50):
        h.on_event({"type": "probe", "service": "a", "at": float(i)})
    assert [e["at"] for e in h.events("a")] == [45.0, 46.0, 47.0, 48.0, 49.0]


@pytest.mark.parametrize("percent,expected", [(None, "healthy"), (79.9, "healthy"),
                                              (80.0, "warning"), (94.9, "warning"),
                                              (95.0, "error"), (100.0, "error")])
def test_diagnostic_grades(percent, expected):
    assert grade(percent) == expected


def test_live_figures_cover_the_whole_tree():
    code = "import subprocess, time; p = subprocess.Popen(['sleep', '30']); time.sleep(30)"
    proc = subprocess.Popen(["python3", "-c", code])
    try:
        from harness import wait_until
        wait_until(lambda: len(tree_pids(proc.pid)) == 2, 10, "the grandchild")
        obj = {"name": "a", "state": "running", "started_at": time.time() - 5,
               "instances": [{"index": 0, "pid": proc.pid, "state": "running"}]}
        live = LiveStats(min_interval=0)
        figs = live.figures([obj])
        assert figs["a"].rss_bytes > 1_000_000
        [out] = with_live([obj], figs)
        assert out["memory_rss_bytes"] == figs["a"].rss_bytes and out["uptime_seconds"] >= 5
        stopped = with_live([{**obj, "state": "stopped"}], figs)[0]
        assert stopped["memory_rss_bytes"] is None and stopped["uptime_seconds"] == 0.0
    finally:
        for pid in tree_pids(proc.pid)[1:]:
            os.kill(pid, 9)
        proc.kill()
        proc.wait()


def test_exposition_helpers_and_loopback():
    assert num(1) == "1.0" and num(float("inf")) == "+Inf" and num(float("nan")) == "NaN"
    assert label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")


class FakePlane:
    """Just enough of a ControlPlane for routes.command(): the owner answers with `outcome`."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.owner = types.SimpleNamespace(post=self.post)

    def post(self, cmd):
        if self.outcome == "silence":
            return
        if isinstance(self.outcome, BaseException):
            cmd.reply.set_exception(self.outcome)
        else:
            cmd.reply.set_result(self.outcome)


@pytest.mark.parametrize("action,outcome,status", [
    ("reload", NotImplementedError("config reload is not available yet"), 501),
    ("restart", KeyError("nope"), 404),
    ("reload", type("ConfigErrors", (Exception,), {"errors": ["a.yaml:3:1: bad"]})(), 422),
    ("reload", OSError("cannot read"), 422),
    ("start", ValueError("unknown command"), 422),
    ("start", RuntimeError("bug"), 500),
])
def test_command_failures_map_to_http(action, outcome, status):
    with pytest.raises(ApiError) as err:
        command(FakePlane(outcome), action, "a")
    assert err.value.status == status and err.value.body["error"]


def test_command_owner_silence_is_503(monkeypatch):
    monkeypatch.setattr("unified_system.api.routes.COMMAND_TIMEOUT", 0.05)
    with pytest.raises(ApiError) as err:
        command(FakePlane("silence"), "stop", "a")
    assert err.value.status == 503
    assert command(FakePlane({"ok": 1}), "stop", "a") == {"ok": 1}


def test_a_services_dumps_are_its_own(tmp_path):
    from unified_system.api.suggestions import latest_dump
    from unified_system.proc.crashdumps import dumps_of

    for name in ("web-20261130T100000.000001Z.json", "web-api-20261130T110000.000001Z.json",
                 "web-20261130T090000.000001Z.json", "web-notes.json"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in dumps_of(tmp_path, "web")] == [
        "web-20261130T090000.000001Z.json", "web-20261130T100000.000001Z.json"]
    assert latest_dump(tmp_path, "web") == str(tmp_path / "web-20261130T100000.000001Z.json")
    assert latest_dump(tmp_path, "web-api").endswith("web-api-20261130T110000.000001Z.json")


def test_the_scrubber_reads_env_files_and_survives_an_unreadable_one(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "ok.env").write_text("DB_PASSWORD=from-the-env-file\n")
    (tmp_path / "bad.env").write_bytes(b"API_TOKEN=\xff\n")
    service = SimpleNamespace(env={}, env_file=(tmp_path / "ok.env", tmp_path / "bad.env"))
    sup = SimpleNamespace(runtime=SimpleNamespace(tokens={}, environ={}), loaded=None,
                          config=SimpleNamespace(services={"a": service}))
    scrubber = Scrubber.for_supervisor(sup, "the-api-key-0123")
    assert scrubber.text("pw from-the-env-file, key the-api-key-0123") == "pw ***, key ***"
