"""Start order over real children: chain, diamond, fan-out, and the three conditions."""

from harness import SupervisorProcess, free_port


def spawn_order(sup, names):
    """Service names in the order they were spawned (state -> starting)."""
    return [r["service"] for r in sup.records()
            if r.get("event") == "state" and r.get("state") == "starting" and r["service"] in names]


def index_of(sup, service, state):
    for i, r in enumerate(sup.records()):
        if r.get("event") == "state" and r.get("service") == service and r.get("state") == state:
            return i
    raise AssertionError(f"{service} never reached {state}")


def test_chain_waits_for_each_condition(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        services:
          db:
            command: ["{{py}}", "{{children}}/tcp_server.py", "{port}", "0.3"]
            readiness: {{tcp: {{port: {port}}}, period: 50ms}}
          api:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            depends_on: {{db: {{condition: healthy}}}}
          web:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            depends_on: [api]
    """) as sup:
        sup.wait_state("web", "running")
        # api is spawned only after db became ready, web only after api started
        assert index_of(sup, "db", "running") < index_of(sup, "api", "starting")
        assert index_of(sup, "api", "starting") < index_of(sup, "web", "starting")
        assert sup.stop() == 0


def test_diamond_and_fanout_siblings_start_together(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          root: {command: ["{py}", "{children}/sleeper.py"]}
          left: {command: ["{py}", "{children}/sleeper.py"], depends_on: [root]}
          right: {command: ["{py}", "{children}/sleeper.py"], depends_on: [root]}
          middle: {command: ["{py}", "{children}/sleeper.py"], depends_on: [root]}
          join: {command: ["{py}", "{children}/sleeper.py"], depends_on: [left, right, middle]}
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
    with SupervisorProcess(tmp_path, """
        services:
          migrate:
            command: ["{py}", "{children}/crasher.py", "0"]
          app:
            command: ["{py}", "{children}/sleeper.py"]
            depends_on: {migrate: {condition: completed}}
    """) as sup:
        sup.wait_state("app", "running")
        assert sup.state("migrate") == "exited"
        assert index_of(sup, "migrate", "exited") < index_of(sup, "app", "starting")
        assert sup.stop() == 0


def test_notify_readiness_gates_dependents(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          svc:
            command: ["{py}", "{children}/notifier.py"]
            readiness: {notify: true}
          after:
            command: ["{py}", "{children}/sleeper.py"]
            depends_on: {svc: {condition: healthy}}
    """) as sup:
        sup.wait_state("after", "running")
        assert index_of(sup, "svc", "running") < index_of(sup, "after", "starting")
        assert sup.stop() == 0


def test_only_runs_the_selection_and_its_dependencies(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          base: {command: ["{py}", "{children}/sleeper.py"]}
          app: {command: ["{py}", "{children}/sleeper.py"], depends_on: [base]}
          other: {command: ["{py}", "{children}/sleeper.py"]}
    """, args=("--only", "app")) as sup:
        sup.wait_state("app", "running")
        assert sup.states("other") == []
        assert sup.stop() == 0


def test_start_interval_probes_a_starting_service_often_so_dependents_start_early(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        services:
          db:
            command: ["{{py}}", "{{children}}/tcp_server.py", "{port}", "0.3"]
            readiness: {{tcp: {{port: {port}}}, period: 60s, start_interval: 20ms}}
          app:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            depends_on: {{db: {{condition: healthy}}}}
    """) as sup:
        # The first probe fails (db listens after 0.3 s): with only the 60 s period, app would
        # wait a minute; start_interval retries every 20 ms until the first success.
        sup.wait_state("app", "running", timeout=15)
        ready = sup.record("db", "running")
        assert ready["pid"] == sup.record("db", "starting")["pid"]
        assert sup.stop() == 0
