"""Hot reload on file change, and config reload: diff applied, invalid refused, rollback."""

import os
import signal

from harness import SupervisorProcess, fill, free_port, refused_port, sleeper, sleepers, tcp_service, wait_until


def exits(sup, service):
    return sup.events("exited", service)


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


def reload_with(sup, services: str) -> None:
    """Put `services` (a `services:` section, with {py} and {children} as in the harness) in
    place of the running config's, then SIGHUP: what an operator's reload does."""
    text = sup.config_path.read_text()
    sup.config_path.write_text(text[:text.index("services:")] + fill(services).lstrip())
    sup.signal(signal.SIGHUP)


def reloaded(sup, count: int = 1, timeout: float = 30) -> dict:
    """The `count`th "config reloaded" record, once there is one (the new config is parsed in a
    helper process: slow on a loaded machine)."""
    return wait_until(lambda: sup.events("config reloaded")[count - 1:], timeout, f"reload #{count}",
                      seen=lambda: sup.records()[-5:])[0]


def test_reload_applies_added_removed_changed_and_leaves_unchanged_alone(tmp_path):
    with SupervisorProcess(tmp_path, sleepers("same", "change", "drop")) as sup:
        pids = {n: sup.wait_state(n, "running")["pid"] for n in ("same", "change", "drop")}
        reload_with(sup, f"""
            services:
              same: {sleeper()}
              change: {{command: ["{{py}}", "{{children}}/sleeper.py", "{tmp_path}/x"]}}
              new: {sleeper()}
        """)
        diff = reloaded(sup)
        assert diff["added"] == ["new"] and diff["removed"] == ["drop"]
        assert diff["changed"] == ["change"] and diff["unchanged"] == ["same"]
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
    with SupervisorProcess(tmp_path, sleepers("a"), supervisor="subreaper: true") as sup:
        sup.wait_state("a", "running")
        reload_with(sup, sleepers("a", "b"))
        diff = reloaded(sup)
        assert diff["added"] == ["b"] and diff["unchanged"] == ["a"]
        sup.wait_state("b", "running")
        assert sup.stop() == 0


def test_invalid_reload_changes_nothing(tmp_path):
    with SupervisorProcess(tmp_path, sleepers("a")) as sup:
        sup.wait_state("a", "running")
        reload_with(sup, "services:\n  a: {command: [sleep, '1'], restart: {polcy: x}}\n")
        refused = wait_until(lambda: [r for r in sup.records()
                                      if r.get("event", "").startswith("reload refused")], 10, "refusal")
        assert "did you mean 'policy'" in " ".join(refused[0]["errors"])
        assert not exits(sup, "a")
        assert sup.stop() == 0


def test_reload_to_a_command_that_never_gets_ready_is_rolled_back(tmp_path):
    port = free_port()
    with refused_port() as dead_port, SupervisorProcess(tmp_path, f"""
        services:
          web: {tcp_service(port, probe="period: 50ms, failure_threshold: 2", stop="{timeout: 1s}")}
    """) as sup:
        first = sup.wait_state("web", "running")["pid"]
        reload_with(sup, f"""
            services:
              web:
                command: ["{{py}}", "{{children}}/sleeper.py"]
                readiness: {{tcp: {{port: {dead_port}}}, period: 50ms, failure_threshold: 2}}
                stop: {{timeout: 1s}}
        """)
        rollback = wait_until(lambda: sup.events("reload: rolling back a changed service"), 30, "rollback")[0]
        assert rollback["service"] == "web"
        # back on the old definition: the tcp server on the old port is ready again
        sup.wait_state("web", "running", count=2, timeout=20)
        assert sup.record("web", "running")["pid"] != first
        assert sup.stop() == 0


def test_watch_config_reloads_when_the_file_changes(tmp_path):
    with SupervisorProcess(tmp_path, sleepers("a"), supervisor="watch_config: true") as sup:
        sup.wait_state("a", "running")
        text = sup.config_path.read_text()   # no SIGHUP: the file's change alone reloads
        sup.config_path.write_text(f"{text}  b: {fill(sleeper())}\n")
        sup.wait_state("b", "running", timeout=15)
        assert not exits(sup, "a")
        assert sup.stop() == 0


def test_a_reload_that_adds_the_first_watch_starts_watching(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with SupervisorProcess(tmp_path, sleepers("app")) as sup:
        sup.wait_state("app", "running")
        reload_with(sup, f"""
            services:
              app:
                command: ["{{py}}", "{{children}}/sleeper.py"]
                watch: {{paths: ["{src}"], debounce: 100ms}}
        """)
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
        reload_with(sup, sleepers("a"))
        sup.wait_state("b", "stopping")        # and stays so: it ignores SIGTERM
        reloaded(sup)
        sup.config_path.write_text(whole)     # put back before b is gone
        sup.signal(signal.SIGHUP)
        reloaded(sup, count=2)
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
