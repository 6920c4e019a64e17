"""Start order over real children: chain, diamond, fan-out, and the three conditions."""

from harness import SupervisorProcess, free_port, sleeper, tcp_service


def spawn_order(sup, names):
    """Service names in the order they were spawned (state -> starting)."""
    return [r["service"] for r in sup.records()
            if r.get("event") == "state" and r.get("state") == "starting" and r["service"] in names]


def index_of(sup, service, state):
    for i, r in enumerate(sup.records()):
        if r.get("event") == "state" and r.get("service") == service and r.get("state") == state:
            return i
    raise AssertionError(f"{service} never reached {state}")


def spawned_after(sup, dependent, dependency, state="running"):
    """`dependency` had reached `state` before `dependent` was spawned."""
    return index_of(sup, dependency, state) < index_of(sup, dependent, "starting")


def test_chain_waits_for_each_condition(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        services:
          db: {tcp_service(port, "0.3", probe="period: 50ms")}
          api: {sleeper("{db: {condition: healthy}}")}
          web: {sleeper("[api]")}
    """) as sup:
        sup.wait_state("web", "running")
        # api is spawned only after db became ready, web only after api started
        assert spawned_after(sup, "api", "db")
        assert spawned_after(sup, "web", "api", "starting")
        assert sup.stop() == 0


def test_diamond_and_fanout_siblings_start_together(tmp_path):
    with SupervisorProcess(tmp_path, f"""
        services:
          root: {sleeper()}
          left: {sleeper("[root]")}
          right: {sleeper("[root]")}
          middle: {sleeper("[root]")}
          join: {sleeper("[left, right, middle]")}
    """) as sup:
        sup.wait_state("join", "running")
        order = spawn_order(sup, {"root", "left", "right", "middle", "join"})
        assert order[0] == "root" and order[-1] == "join"
        assert set(order[1:4]) == {"left", "right", "middle"}
        # siblings are spawned in one reconcile pass: no event of another service between them
        starts = [i for i, r in enumerate(sup.records()) if r.get("event") == "state"
                  and r.get("state") == "starting" and r["service"] in ("left", "right", "middle")]
        assert starts[-1] - starts[0] <= 5, sup.records()[starts[0]:starts[-1] + 1]
        assert sup.stop() == 0


def test_completed_condition_waits_for_exit_zero(tmp_path):
    with SupervisorProcess(tmp_path, f"""
        services:
          migrate:
            command: ["{{py}}", "{{children}}/crasher.py", "0"]
          app: {sleeper("{migrate: {condition: completed}}")}
    """) as sup:
        sup.wait_state("app", "running")
        assert sup.state("migrate") == "exited"
        assert spawned_after(sup, "app", "migrate", "exited")
        assert sup.stop() == 0


def test_notify_readiness_gates_dependents(tmp_path):
    with SupervisorProcess(tmp_path, f"""
        services:
          svc:
            command: ["{{py}}", "{{children}}/notifier.py"]
            readiness: {{notify: true}}
          after: {sleeper("{svc: {condition: healthy}}")}
    """) as sup:
        sup.wait_state("after", "running")
        assert spawned_after(sup, "after", "svc")
        assert sup.stop() == 0


def test_only_runs_the_selection_and_its_dependencies(tmp_path):
    with SupervisorProcess(tmp_path, f"""
        services:
          base: {sleeper()}
          app: {sleeper("[base]")}
          other: {sleeper()}
    """, args=("--only", "app")) as sup:
        sup.wait_state("app", "running")
        assert sup.states("other") == []
        assert sup.stop() == 0


def test_start_interval_probes_a_starting_service_often_so_dependents_start_early(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        services:
          db: {tcp_service(port, "0.3", probe="period: 60s, start_interval: 20ms")}
          app: {sleeper("{db: {condition: healthy}}")}
    """) as sup:
        # The first probe fails (db listens after 0.3 s): with only the 60 s period, app would
        # wait a minute; start_interval retries every 20 ms until the first success.
        sup.wait_state("app", "running", timeout=15)
        ready = sup.record("db", "running")
        assert ready["pid"] == sup.record("db", "starting")["pid"]
        assert sup.stop() == 0
