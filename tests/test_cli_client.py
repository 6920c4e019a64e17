"""The CLI client (status, start/stop/restart, reload, logs) against a real supervisor."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import httpx
import pytest

from harness import PY, START, SupervisorProcess, free_port, wait_until
from unified_system.client import new_lines, table


def cli(sup, *args, timeout=30):
    return subprocess.run([PY, str(START), *args, "-c", str(sup.config_path)],
                          capture_output=True, text=True, timeout=timeout)


def api(sup, path):
    return httpx.get(sup.api_url + path, headers=sup.auth(), timeout=5).json()


@pytest.fixture
def sup(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          web: {command: ["{py}", "{children}/sleeper.py"]}
          api:
            command: ["{py}", "{children}/sleeper.py"]
            depends_on: [web]
          once: {command: ["{py}", "{children}/crasher.py", "3"], restart: {policy: never}}
    """) as s:
        s.wait_api()
        s.wait_state("api", "running")
        s.wait_state("once", "exited")
        yield s
        assert s.stop() == 0


def test_status_table_and_json(sup):
    done = cli(sup, "status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "READY", "HEALTH", "PID", "UPTIME", "RESTARTS",
                                "MEMORY", "LAST", "EXIT"]
    rows = {ln.split()[0]: ln for ln in lines[1:]}
    assert set(rows) == {"web", "api", "once"}
    assert rows["web"].split()[1:3] == ["running", "yes"]
    assert " MB" in rows["web"]
    assert "crash (code 3)" in rows["once"] and rows["once"].split()[1] == "exited"

    done = cli(sup, "status", "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    answered = api(sup, "/api/services")
    volatile = {"uptime_seconds", "cpu_percent", "memory_rss_bytes"}

    def strip(objs: list[dict]) -> list[dict]:
        return [{k: v for k, v in o.items() if k not in volatile} for o in objs]

    assert strip(printed) == strip(answered)
    assert [set(o) for o in printed] == [set(o) for o in answered]


def test_start_stop_restart(sup):
    done = cli(sup, "stop", "web")
    assert done.returncode == 0, done.stderr
    assert "stop web: accepted" in done.stdout
    wait_until(lambda: api(sup, "/api/services/web")["state"] == "stopped", 10, "web stopped")
    assert api(sup, "/api/services/api")["state"] == "stopped"   # its dependent went first

    assert cli(sup, "start", "api").returncode == 0          # brings web back too
    wait_until(lambda: api(sup, "/api/services/api")["state"] == "running", 10, "api running")
    assert api(sup, "/api/services/web")["state"] == "running"

    pid = api(sup, "/api/services/api")["pid"]
    assert cli(sup, "restart", "api").returncode == 0
    wait_until(lambda: (s := api(sup, "/api/services/api"))["state"] == "running"
               and s["pid"] != pid, 10, "a new api process")


def test_unknown_service_fails_with_the_message(sup):
    done = cli(sup, "restart", "nope")
    assert done.returncode == 1
    assert "no such service" in done.stderr


def test_the_key_is_not_handed_to_an_http_proxy(sup):
    proxy = socket.create_server(("127.0.0.1", 0))  # would see the X-API-Key: nobody answers
    proxy.settimeout(0)
    try:
        env = {**os.environ, "HTTP_PROXY": f"http://127.0.0.1:{proxy.getsockname()[1]}",
               "http_proxy": f"http://127.0.0.1:{proxy.getsockname()[1]}", "NO_PROXY": ""}
        done = subprocess.run([PY, str(START), "restart", "web", "-c", str(sup.config_path)],
                              capture_output=True, text=True, timeout=30, env=env)
        assert done.returncode == 0, done.stderr
        with pytest.raises(BlockingIOError):
            proxy.accept()
    finally:
        proxy.close()


def test_reload(sup):
    done = cli(sup, "reload")
    assert done.returncode == 0, done.stderr
    assert "unchanged: api, once, web" in done.stdout
    good = sup.config_path.read_text()
    try:
        sup.config_path.write_text(good.replace("depends_on: [web]", "depends_on: [nope]"))
        done = cli(sup, "reload")
        assert done.returncode == 1
        assert "nothing changed" in done.stderr and "nope" in done.stderr
    finally:
        sup.config_path.write_text(good)


def test_logs_n_and_follow(sup):
    done = cli(sup, "logs", "web", "-n", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == api(sup, "/api/services/web/logs")["lines"][-1:]
    assert "sleeper web up" in done.stdout
    assert cli(sup, "logs", "nope").returncode == 1
    assert cli(sup, "logs", "web", "-n", "x").returncode == 2   # argparse: not an int

    out = sup.dir / "follow.out"
    with open(out, "w") as fh:
        follow = subprocess.Popen([PY, str(START), "logs", "web", "-f", "-n", "5", "-c",
                                   str(sup.config_path)], stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "sleeper web up" in out.read_text(), 10, "the existing line")
        first = out.read_text().count("sleeper web up")
        httpx.post(sup.api_url + "/api/services/web/restart",
                   headers={"X-API-Key": sup.api_key()}, timeout=5)
        wait_until(lambda: out.read_text().count("sleeper web up") == first + 1, 10,
                   "the restarted process's line", seen=out.read_text)
        follow.send_signal(signal.SIGINT)
        try:
            assert follow.wait(30) == 0
        except subprocess.TimeoutExpired:
            status = open(f"/proc/{follow.pid}/status").read()
            spy = subprocess.run(["py-spy", "dump", "--pid", str(follow.pid)], capture_output=True,
                                 text=True, timeout=30).stdout
            raise AssertionError(f"no exit after SIGINT\n{status}\n{spy}") from None
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def test_no_supervisor_is_exit_3_for_status_and_1_for_the_rest(tmp_path):
    port = free_port()
    config = tmp_path / "services.yaml"
    config.write_text(f"supervisor: {{port: {port}, state_dir: {tmp_path}/state}}\n"
                      f"services:\n  web: {{command: [{PY!r}, '-c', 'pass']}}\n")
    for args, code in ((["status"], 3), (["status", "--json"], 3), (["stop", "web"], 1),
                       (["logs", "web"], 1), (["reload"], 1)):
        done = subprocess.run([PY, str(START), *args, "-c", str(config)], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == code, (args, done.stderr)
        assert f"no supervisor is running at 127.0.0.1:{port}" in done.stderr


def test_clients_need_only_the_supervisor_section(sup):
    # The operator's shell lacks a variable a service needs: status and stop still work, and
    # a reload is judged by the server (which has the variable).
    good = sup.config_path.read_text()
    try:
        sup.config_path.write_text(good.replace("web: {command:", "web: {env: {DB: '${DB_URL:?required}'}, command:"))
        assert cli(sup, "status").returncode == 0
        assert cli(sup, "stop", "once").returncode == 0
        done = cli(sup, "reload")
        assert done.returncode == 1 and "DB_URL" in done.stderr, done.stderr
    finally:
        sup.config_path.write_text(good)


def test_table_formats_empty_fields():
    text = table([{"name": "a", "state": "stopped", "ready": False, "health": "unknown",
                   "pid": None, "uptime_seconds": 0.0, "restarts": 2, "memory_rss_bytes": None,
                   "last_exit": {"code": None, "signal": "SIGTERM", "reason": "manual"}}])
    row = text.splitlines()[1].split()
    assert row == ["a", "stopped", "no", "unknown", "-", "-", "2", "-", "manual", "(SIGTERM)"]


@pytest.mark.parametrize("previous,current,new", [
    ([], ["a"], ["a"]),
    (["a", "b"], ["a", "b"], []),
    (["a", "b"], ["a", "b", "c"], ["c"]),
    (["a", "b", "c"], ["b", "c", "d", "e"], ["d", "e"]),   # the window slid
    (["a", "b"], ["x", "y"], ["x", "y"]),                    # rotated
])
def test_follow_finds_new_lines(previous, current, new):
    assert new_lines(previous, current) == new


def test_check_without_env_checks_every_overlay_too(tmp_path):
    config = tmp_path / "services.yaml"
    config.write_text("services:\n  a: {command: [sleep, '1']}\n"
                      "environments:\n  prod: {services: {a: {instances: 0}}}\n"
                      "  dev: {services: {a: {env: {X: '1'}}}}\n")

    def check(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([PY, str(START), "check", "-c", str(config), *args],
                              capture_output=True, text=True, timeout=30)

    done = check()
    assert done.returncode == 2 and "wave 1: a" in done.stdout
    assert "environment dev: OK" in done.stderr
    assert "environment prod: 1 error(s)" in done.stderr and "services.a.instances" in done.stderr
    assert check("--env", "dev").returncode == 0   # one overlay asked for: that one only


def test_status_imports_neither_the_schema_nor_an_http_library(sup):
    # A client command must be quick: pydantic and httpx cost it several times its exchange.
    done = subprocess.run([PY, "-X", "importtime", str(START), "status", "-c", str(sup.config_path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "web" in done.stdout
    assert not {m for m in imported if m.split(".")[0] in ("pydantic", "httpx", "structlog", "psutil")}


def test_the_quick_read_takes_the_port_from_dotenv_and_the_overlay_env(tmp_path):
    # The address comes from .env and an overlay selected by --env, as the full loader reads them.
    port = free_port()
    (tmp_path / ".env").write_text(f"SUP_PORT={port}\n")
    with SupervisorProcess(tmp_path, f"""
        supervisor: {{port: "${{SUP_PORT}}", state_dir: {tmp_path}/state}}
        services:
          web: {{command: ["{{py}}", "{{children}}/sleeper.py"]}}
        environments:
          staging: {{services: {{web: {{env: {{X: "1"}}}}}}}}
    """) as s:
        s.wait_state("web", "running")
        for extra in ((), ("--env", "staging")):
            def status(extra=extra):
                return subprocess.run([PY, str(START), "status", *extra, "-c", str(s.config_path)],
                                      capture_output=True, text=True, timeout=30)
            done = wait_until(lambda: (d := status()).returncode == 0 and d, 20, "status to answer",
                              seen=lambda: status().stderr)
            assert "web" in done.stdout and f"{port}" not in done.stderr
        assert s.stop() == 0


def test_what_the_quick_read_is_unsure_of_gets_the_schemas_error(tmp_path):
    config = tmp_path / "services.yaml"
    for supervisor, said in (("{port: 'eighty'}", "supervisor.port"),
                             ("{port: '${NOPE:?set NOPE first}'}", "set NOPE first")):
        config.write_text(f"supervisor: {supervisor}\nservices:\n  web: {{command: [{PY!r}]}}\n")
        done = subprocess.run([PY, str(START), "status", "-c", str(config)], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 2 and said in done.stderr, done.stderr
