"""The real backend (uvicorn on the inherited fd) and Node gateway (server.listen({fd: 3}))
under held sockets: rolling restarts refuse no connection."""

import shutil
import signal
from pathlib import Path

import pytest
from test_held_sockets import Load, rolled

from harness import SupervisorProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def restart_by_reload(sup, base, rounds, service):
    for round_ in range(rounds):
        sup.config_path.write_text(base.replace("ROUND: '0'", f"ROUND: '{round_ + 1}'"))
        sup.signal(signal.SIGHUP)
        wait_until(lambda r=round_: len(rolled(sup)) >= r + 1, 60, f"rolling restart {round_}",
                   seen=lambda: sup.states(service))
        wait_until(lambda r=round_: sup.states(service).count("stopped") >= r + 1, 30,
                   "the old incarnation to stop", seen=lambda: sup.states(service))


def assert_restarts_refuse_nothing(sup, port, service, rounds=2):
    """Two rolling restarts under a closed-loop client on /health: not one request fails."""
    load = Load(port, max_seconds=60)
    load.path = "/health"
    load.start()
    try:
        wait_until(lambda: load.ok > 10, 20, "traffic")
        restart_by_reload(sup, sup.config_path.read_text(), rounds, service)
    finally:
        load.halt.set()
        load.join(10)
    assert load.failed == [], load.failed[:3]
    assert sup.stop() == 0


def test_backend_on_a_held_socket(tmp_path):
    pytest.importorskip("fastapi")
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        services:
          backend:
            command: ["{{py}}", "-m", "backend"]
            cwd: {ROOT}/services/backend
            env: {{PYTHONPATH: "{ROOT}/src", DATA_DIR: "{tmp_path}/data", ROUND: '0'}}
            listen: [{{port: {port}, name: http}}]
            readiness: {{notify: true}}
            stop: {{timeout: 5s}}
    """) as sup:
        sup.wait_state("backend", "running", timeout=30)
        assert_restarts_refuse_nothing(sup, port, "backend")


def test_node_gateway_on_a_held_socket(tmp_path):
    if not (ROOT / "services" / "node-server" / "node_modules").exists() or not shutil.which("node"):
        pytest.skip("node-server dependencies are not installed (npm ci)")
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        services:
          gateway:
            command: ["node", "src/index.js"]
            cwd: {ROOT}/services/node-server
            inherit_env: [PATH, HOME]
            env: {{PORT: "{port}", SUPERVISOR_PORT: "1", PYTHON_PORT: "1", ROUND: '0'}}
            listen: [{{port: {port}, name: http}}]
            readiness: {{http: {{url: "http://127.0.0.1:{port}/health"}}, period: 50ms}}
            stop: {{timeout: 5s}}
    """) as sup:
        sup.wait_state("gateway", "running", timeout=30)
        wait_until(lambda: '"fd":3' in sup.output(), 10, "node to listen on fd 3")
        assert_restarts_refuse_nothing(sup, port, "gateway")
