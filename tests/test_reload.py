"""Hot reload on file change, and config reload: diff applied, invalid refused, rollback."""

import os
import signal

from harness import CHILDREN, PY, SupervisorProcess, free_port, refused_port, wait_until


def exits(sup, service):
    return [r for r in sup.records() if r.get("event") == "exited" and r.get("service") == service]


def test_a_burst_of_changes_gives_one_restart_and_ignored_paths_none(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with SupervisorProcess(tmp_path, f"""
        services:
          app:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            watch: {{paths: ["{src}"], ignore: ["*.pyc", "cache"], debounce: 300ms}}
    """) as sup:
        sup.wait_state("app", "running")
        for i in range(20):
            (src / f"mod{i}.py").write_text(f"x = {i}\n")
        sup.wait_state("app", "running", count=2)
        assert [e["reason"] for e in exits(sup, "app")] == ["watch"]
        (src / "cache").mkdir()
        (src / "cache" / "blob").write_text("ignored")
        (src / "mod.pyc").write_bytes(b"ignored")
        # a later real change proves the watcher still runs, and that nothing fired in between
        (src / "mod0.py").write_text("x = 'again'\n")
        sup.wait_state("app", "running", count=3)
        assert len(exits(sup, "app")) == 2
        assert sup.stop() == 0


def reload_config(tmp_path, services: str) -> None:
    text = (tmp_path / "services.yaml").read_text()
    head = text[:text.index("services:")]
    (tmp_path / "services.yaml").write_text(head + services)


def test_reload_applies_added_removed_changed_and_leaves_unchanged_alone(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          same: {command: ["{py}", "{children}/sleeper.py"]}
          change: {command: ["{py}", "{children}/sleeper.py"]}
          drop: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        pids = {n: sup.wait_state(n, "running")["pid"] for n in ("same", "change", "drop")}
        reload_config(tmp_path, f"""services:
  same: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}
  change: {{command: ["{PY}", "{CHILDREN}/sleeper.py", "{tmp_path}/x"]}}
  new: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}
""")
        sup.signal(signal.SIGHUP)
        reloaded = wait_until(lambda: [r for r in sup.records() if r.get("event") == "config reloaded"],
                              10, "reload")[0]
        assert reloaded["added"] == ["new"] and reloaded["removed"] == ["drop"]
        assert reloaded["changed"] == ["change"] and reloaded["unchanged"] == ["same"]
        sup.wait_state("new", "running")
        sup.wait_state("change", "running", count=2)
        sup.wait_state("drop", "stopped")
        assert [e["reason"] for e in exits(sup, "change")] == ["reload"]
        assert not exits(sup, "same")                       # same pid, never touched
        assert sup.record("change", "running")["pid"] != pids["change"]
        assert sup.stop() == 0


def test_reload_parses_in_a_helper_the_subreaper_sweep_leaves_alone(tmp_path):
    # The reload validates in a helper process; as a subreaper the supervisor reaps every
    # child it did not spawn for a service, and must not reap that helper under its waiter.
    with SupervisorProcess(tmp_path, """
        services:
          a: {command: ["{py}", "{children}/sleeper.py"]}
    """, supervisor="subreaper: true") as sup:
        sup.wait_state("a", "running")
        reload_config(tmp_path, f"""services:
  a: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}
  b: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}
""")
        sup.signal(signal.SIGHUP)
        reloaded = wait_until(lambda: [r for r in sup.records() if r.get("event") == "config reloaded"],
                              20, "reload")[0]
        assert reloaded["added"] == ["b"] and reloaded["unchanged"] == ["a"]
        sup.wait_state("b", "running")
        assert sup.stop() == 0


def test_invalid_reload_changes_nothing(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          a: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        sup.wait_state("a", "running")
        reload_config(tmp_path, "services:\n  a: {command: [sleep, '1'], restart: {polcy: x}}\n")
        sup.signal(signal.SIGHUP)
        refused = wait_until(lambda: [r for r in sup.records()
                                      if r.get("event", "").startswith("reload refused")], 10, "refusal")
        assert "did you mean 'policy'" in " ".join(refused[0]["errors"])
        assert not exits(sup, "a")
        assert sup.stop() == 0


def test_reload_to_a_command_that_never_gets_ready_is_rolled_back(tmp_path):
    port = free_port()
    with refused_port() as dead_port, SupervisorProcess(tmp_path, f"""
        services:
          web:
            command: ["{{py}}", "{{children}}/tcp_server.py", "{port}"]
            readiness: {{tcp: {{port: {port}}}, period: 50ms, failure_threshold: 2}}
            stop: {{timeout: 1s}}
    """) as sup:
        first = sup.wait_state("web", "running")["pid"]
        reload_config(tmp_path, f"""services:
  web:
    command: ["{PY}", "{CHILDREN}/sleeper.py"]
    readiness: {{tcp: {{port: {dead_port}}}, period: 50ms, failure_threshold: 2}}
    stop: {{timeout: 1s}}
""")
        sup.signal(signal.SIGHUP)
        rollback = wait_until(lambda: [r for r in sup.records()
                                       if r.get("event") == "reload: rolling back a changed service"],
                              30, "rollback")[0]
        assert rollback["service"] == "web"
        # back on the old definition: the tcp server on the old port is ready again
        sup.wait_state("web", "running", count=2, timeout=20)
        assert sup.record("web", "running")["pid"] != first
        assert sup.stop() == 0


def test_watch_config_reloads_when_the_file_changes(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          a: {command: ["{py}", "{children}/sleeper.py"]}
    """, supervisor="watch_config: true") as sup:
        sup.wait_state("a", "running")
        text = sup.config_path.read_text()
        sup.config_path.write_text(text + f'  b: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}\n')
        sup.wait_state("b", "running", timeout=15)
        assert not exits(sup, "a")
        assert sup.stop() == 0


def test_a_reload_that_adds_the_first_watch_starts_watching(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with SupervisorProcess(tmp_path, """
        services:
          app: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        sup.wait_state("app", "running")
        reload_config(tmp_path, f"""services:
  app:
    command: ["{PY}", "{CHILDREN}/sleeper.py"]
    watch: {{paths: ["{src}"], debounce: 100ms}}
""")
        sup.signal(signal.SIGHUP)
        sup.wait_state("app", "running", count=2)          # changed by the reload
        (src / "mod.py").write_text("x = 1\n")
        sup.wait_state("app", "running", count=3)
        assert [e["reason"] for e in exits(sup, "app")] == ["reload", "watch"]
        assert sup.stop() == 0


def test_a_service_put_back_while_its_removal_still_stops_it_comes_back(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          a: {command: ["{py}", "{children}/sleeper.py"]}
          b: {command: ["{py}", "{children}/stubborn.py"], stop: {timeout: 60s}}
    """) as sup:
        sup.wait_state("b", "running")
        wait_until(lambda: "stubborn up" in sup.output(), 30, "b to ignore SIGTERM")
        whole = sup.config_path.read_text()
        reload_config(tmp_path, f'services:\n  a: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}\n')
        sup.signal(signal.SIGHUP)
        sup.wait_state("b", "stopping")        # and stays so: it ignores SIGTERM
        wait_until(lambda: [r for r in sup.records() if r.get("event") == "config reloaded"], 10, "1st reload")
        sup.config_path.write_text(whole)     # put back before b is gone
        sup.signal(signal.SIGHUP)
        wait_until(lambda: len([r for r in sup.records() if r.get("event") == "config reloaded"]) == 2,
                   10, "2nd reload")
        old = sup.record("b", "stopping")["pid"]
        os.kill(old, signal.SIGKILL)  # the stop ends
        sup.wait_state("b", "running", count=2, timeout=30)
        records = sup.records()
        gone = [i for i, r in enumerate(records) if r.get("event") == "exited" and r.get("pid") == old]
        again = [i for i, r in enumerate(records) if r.get("service") == "b" and r.get("state") == "starting"]
        assert gone and gone[0] < again[1]  # one b at a time: the new one once the old one is gone
        wait_until(lambda: sup.output().count("stubborn up") == 2, 30, "b to ignore SIGTERM again")
        sup.signal(signal.SIGINT)
        sup.wait_state("b", "stopping", count=2)
        sup.signal(signal.SIGINT)  # the second kills at once
        assert sup.proc.wait(30) == 0
