"""The control API of SPEC §6 against a real supervisor: every route and every error code."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat

import httpx
import pytest

from harness import PY, SupervisorProcess, free_port, sleepers, wait_until

SERVICE_KEYS = {"name", "state", "ready", "health", "pid", "instances", "uptime_seconds",
                "restarts", "last_exit", "circuit", "depends_on", "critical",
                "memory_rss_bytes", "cpu_percent"}


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    envfile = tmp / "worker.env.json"
    s = SupervisorProcess(tmp, f"""
        services:
          web:
            command: ["{{py}}", "{{children}}/sleeper.py"]
          worker:
            command: ["{{py}}", "{{children}}/envdump.py", "{envfile}"]
            depends_on: [web]
          crashy:
            command: ["{{py}}", "{{children}}/crasher.py", "1"]
            critical: false
            restart: {{backoff: {{initial: 0}}, max_restarts: 3, window: 60s, cooldown: null}}
    """)
    s.envfile = envfile
    with s:
        s.wait_api()
        s.wait_state("web", "running")
        wait_until(envfile.exists, 10, "worker's env dump")
        yield s


@pytest.fixture(scope="module")
def key(sup):
    return sup.api_key()


def get(sup, path, **kw):
    kw.setdefault("headers", sup.auth())   # reads need the key too (SPEC §6)
    return httpx.get(sup.api_url + path, timeout=5, **kw)


def post(sup, path, key=None, **kw):
    headers = kw.pop("headers", {})
    if key is not None:
        headers["X-API-Key"] = key
    return httpx.post(sup.api_url + path, headers=headers, timeout=10, **kw)


def raw_get(sup, path):
    """Send the path byte for byte (httpx would normalise '..' segments)."""
    host, port = sup.api_address()
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("X-API-Key", sup.api_key())
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def service(sup, name):
    return get(sup, f"/api/services/{name}").json()


# --------------------------------------------------------------------------- reads
def test_health_lists_every_service(sup):
    r = get(sup, "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] in ("healthy", "degraded")
    assert set(body["services"]) == {"web", "worker", "crashy"}


def test_services_are_spec_objects_with_live_figures(sup):
    r = get(sup, "/api/services")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    objects = {o["name"]: o for o in r.json()}
    assert list(objects) == ["web", "worker", "crashy"]
    web = objects["web"]
    assert SERVICE_KEYS <= set(web)
    assert "env" not in web
    assert web["state"] == "running" and web["pid"] > 0
    assert web["instances"] == [{"index": 0, "pid": web["pid"], "state": "running"}]
    assert web["memory_rss_bytes"] > 1_000_000
    assert isinstance(web["cpu_percent"], float)
    assert objects["worker"]["depends_on"] == ["web"]
    first = web["uptime_seconds"]
    wait_until(lambda: service(sup, "web")["uptime_seconds"] > first + 0.3, 5,
               "uptime to grow at read time")


def test_one_service(sup):
    r = get(sup, "/api/services/web")
    assert r.status_code == 200 and r.json()["name"] == "web"


def test_unknown_service_is_404(sup, key):
    assert get(sup, "/api/services/nope").status_code == 404
    assert get(sup, "/api/services/nope/logs").status_code == 404
    r = post(sup, "/api/services/nope/restart", key)
    assert r.status_code == 404 and r.json()["error"] == "no such service"


@pytest.mark.parametrize("path", ["/", "/api", "/api/nope", "/api/services/web/nope",
                                  "/api//services", "/healthz", "/api/services/web/logs/x"])
def test_unknown_route_is_404(sup, path):
    r = get(sup, path)
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/api/services/web/restart", "POST"),
    ("POST", "/health", "GET"),
    ("DELETE", "/api/services", "GET"),
    ("PUT", "/api/services/web", "GET"),
    ("GET", "/api/reload", "POST"),
    ("GET", "/api/services/web/heartbeat", "POST"),
])
def test_wrong_method_is_405(sup, method, path, allow):
    r = httpx.request(method, sup.api_url + path, timeout=5)
    assert r.status_code == 405
    assert r.headers["allow"] == allow and "error" in r.json()


def test_head_is_405_without_a_body(sup):
    with httpx.Client(base_url=sup.api_url, timeout=5) as c:
        r = c.head("/api/services")
        assert r.status_code == 405 and r.headers["allow"] == "GET" and r.content == b""
        assert c.get("/health").status_code == 200   # the keep-alive connection still works


# --------------------------------------------------------------------------- auth and bodies
@pytest.mark.parametrize("path", ["/api/services/web/start", "/api/services/web/stop",
                                  "/api/services/web/restart", "/api/reload"])
@pytest.mark.parametrize("given", [None, "wrong", ""])
def test_mutations_need_the_api_key(sup, path, given):
    headers = {} if given is None else {"X-API-Key": given}
    r = post(sup, path, headers=headers)
    assert r.status_code == 401 and "X-API-Key" in r.json()["error"]
    assert service(sup, "web")["state"] == "running"


def test_unknown_service_needs_the_key_first(sup):
    # an unauthenticated caller learns nothing, not even which names exist
    assert post(sup, "/api/services/nope/restart").status_code == 401


def test_body_over_64k_is_413(sup, key):
    r = post(sup, "/api/services/web/restart", key, content=b"x" * (64 * 1024 + 1),
             headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["limit"] == 65536
    assert service(sup, "web")["restarts"] == 0


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\"text\"", b"\xff\xfe"])
def test_bad_body_is_422(sup, key, body):
    r = post(sup, "/api/services/web/restart", key, content=body)
    assert r.status_code == 422 and "error" in r.json()
    assert service(sup, "web")["restarts"] == 0


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:8900", "10.0.0.1",
                                  "localhost", "127.0.0.1:8900", "[::1]:8900", "LOCALHOST"])
def test_reads_need_the_key_whatever_the_host(sup, host):
    # open_reads is off by default: a loopback Host (or peer) grants nothing
    r = httpx.get(sup.api_url + "/api/services", headers={"Host": host}, timeout=10)
    assert r.status_code == 401, r.text
    r = httpx.get(sup.api_url + "/api/services", headers={"Host": host, "X-API-Key": "wrong"},
                  timeout=10)
    assert r.status_code == 401, r.text
    assert httpx.get(sup.api_url + "/health", headers={"Host": host}, timeout=10).status_code == 200
    assert httpx.get(sup.api_url + "/metrics", headers={"Host": host}, timeout=10).status_code == 200


@pytest.mark.parametrize("host, status", [
    ("evil.example.com", 401), ("evil.example.com:8900", 401), ("10.0.0.1", 401),
    ("localhost", 200), ("127.0.0.1:8900", 200), ("[::1]:8900", 200), ("LOCALHOST", 200),
])
def test_open_reads_answer_only_a_loopback_host_name(open_sup, host, status):
    # DNS rebinding: a page of evil.example.com, its name rebound to 127.0.0.1, asks for it
    r = httpx.get(open_sup.api_url + "/api/services", headers={"Host": host}, timeout=10)
    assert r.status_code == status, r.text
    # open reads are reads: a mutation still needs the key
    r = httpx.post(open_sup.api_url + "/api/services/web/stop", headers={"Host": host}, timeout=10)
    assert r.status_code == 401, r.text


@pytest.fixture(scope="module")
def open_sup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("open-reads")
    with SupervisorProcess(tmp, sleepers("web"), supervisor="open_reads: true") as s:
        s.wait_api()
        yield s


def test_an_unread_body_is_never_taken_for_the_next_request(sup):
    # The body of a request refused before it is read (404) holds a request of its own.
    smuggled = b"GET /api/services/web HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    host, port = sup.api_address()
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(b"POST /api/nope HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(smuggled), smuggled))
        answer = b""
        while chunk := conn.recv(65536):  # the server closes: one answer, then end of stream
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 404") or answer.startswith(b"HTTP/1.1 404")
    assert answer.count(b"HTTP/1.") == 1


def test_api_key_file_is_0600(sup, key):
    path = sup.state_dir / "api_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 40


# --------------------------------------------------------------------------- actions
def test_reload_unchanged_then_invalid_is_422(sup, key):
    r = post(sup, "/api/reload", key)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["unchanged"]) == ["crashy", "web", "worker"]
    assert r.json()["added"] == r.json()["removed"] == r.json()["changed"] == []
    good = sup.config_path.read_text()
    try:
        sup.config_path.write_text(good + "\n  bad: {command: 12, nope: 1}\n")
        r = post(sup, "/api/reload", key)
        assert r.status_code == 422, r.text
        assert r.json()["errors"] and "nothing changed" in r.json()["error"]
    finally:
        sup.config_path.write_text(good)
    assert "bad" not in {s["name"] for s in get(sup, "/api/services").json()}


# --------------------------------------------------------------------------- heartbeat
def test_heartbeat_takes_the_services_own_token(sup):
    token = json.loads(sup.envfile.read_text())["UNIFIED_TOKEN"]
    url = json.loads(sup.envfile.read_text())["UNIFIED_HEARTBEAT_URL"]
    assert url == sup.api_url + "/api/services/worker/heartbeat"
    ok = httpx.post(url, headers={"X-Unified-Token": token}, timeout=5)
    assert ok.status_code == 202 and ok.json() == {"service": "worker"}
    assert httpx.post(url, timeout=5).status_code == 401
    assert httpx.post(url, headers={"X-Unified-Token": "x" * 32}, timeout=5).status_code == 403
    # a token is only good for its own service
    other = sup.api_url + "/api/services/web/heartbeat"
    assert httpx.post(other, headers={"X-Unified-Token": token}, timeout=5).status_code == 403
    nope = sup.api_url + "/api/services/nope/heartbeat"
    assert httpx.post(nope, headers={"X-Unified-Token": token}, timeout=5).status_code == 404


# --------------------------------------------------------------------------- logs
def test_logs_default_and_n(sup):
    r = get(sup, "/api/services/web/logs")
    assert r.status_code == 200
    body = r.json()
    assert body["service"] == "web" and any("sleeper web up" in ln for ln in body["lines"])
    assert get(sup, "/api/services/web/logs?lines=0").json()["lines"] == []
    assert len(get(sup, "/api/services/web/logs?lines=1").json()["lines"]) == 1


@pytest.mark.parametrize("query", ["lines=abc", "lines=10001", "lines=-1", "lines=", "lines=1.5"])
def test_logs_bad_query_is_422(sup, query):
    r = get(sup, f"/api/services/web/logs?{query}")
    assert r.status_code == 422 and "lines" in r.json()["error"]


@pytest.mark.parametrize("path", [
    "/api/services/..%2F..%2Fetc%2Fpasswd/logs",
    "/api/services/..%252F..%252Fetc%252Fpasswd/logs",
    "/api/services/../../../../etc/passwd/logs",
    "/api/services/%2e%2e/logs",
    "/api/services/%2Fetc%2Fpasswd/logs",
    "/api/services/web%2F..%2F..%2Fsupervisor/logs",
    "/api/services/..%5C..%5Cetc%5Cpasswd/logs",
    "/api/services/web%00/logs",
    "/api/services/%ff%fe/logs",
    "/api/services/web/logs/../../../../etc/passwd",
    "/api/services/web/../../../etc/passwd",
    "/api/services/supervisor/logs",
])
def test_logs_path_traversal_is_404(sup, path):
    status, body = raw_get(sup, path)
    assert status == 404, body
    assert "root:" not in body and "supervisor started" not in body


# --------------------------------------------------------------------------- diagnostics
def test_diagnostics(sup):
    r = get(sup, "/api/diagnostics")
    assert r.status_code == 200
    body = r.json()
    assert body["supervisor"]["pid"] == sup.proc.pid
    assert body["supervisor"]["version"]
    checks = body["checks"]
    assert {"memory", "cpu", "load", "threads", "file_descriptors", "disk", "connections"} <= set(checks)
    for check in checks.values():
        assert check["status"] in ("healthy", "warning", "error")
    assert checks["file_descriptors"]["open"] > 0
    assert checks["connections"]["by_state"].get("LISTEN", 0) >= 1
    assert body["status"] in ("healthy", "warning", "error")


def test_suggestions_for_a_crash_loop(sup):
    wait_until(lambda: service(sup, "crashy")["state"] == "fatal", 15, "crashy fatal")
    r = get(sup, "/api/suggestions")
    assert r.status_code == 200
    found = {(s["rule"], s["service"]): s for s in r.json()["suggestions"]}
    crash = found[("crash_on_start", "crashy")]
    assert "config" in crash["message"] and crash["evidence"]["crashes"] >= 3
    assert "crasher exiting with 1" in crash["evidence"]["last_error"]
    assert ("circuit_open", "crashy") in found
    assert not [k for k in found if k[1] != "crashy"]
    assert get(sup, "/health").json()["status"] == "degraded"   # crashy is not critical


# --------------------------------------------------------------------------- separate runs
def test_stop_start_restart(tmp_path):
    # its own supervisor: the module's one must not grow processes between tests
    with SupervisorProcess(tmp_path, """
        services:
          victim: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        sup.wait_api()
        key = sup.api_key()
        sup.wait_state("victim", "running")
        r = post(sup, "/api/services/victim/stop", key)
        assert r.status_code == 202 and r.json()["name"] == "victim"
        wait_until(lambda: service(sup, "victim")["state"] == "stopped", 10, "victim stopped",
                   seen=lambda: service(sup, "victim"))
        assert service(sup, "victim")["last_exit"]["reason"] == "manual"

        assert post(sup, "/api/services/victim/start", key, json={}).status_code == 202
        wait_until(lambda: service(sup, "victim")["state"] == "running", 10, "victim running")

        before = service(sup, "victim")
        r = post(sup, "/api/services/victim/restart", key)
        assert r.status_code == 202 and SERVICE_KEYS <= set(r.json())
        wait_until(lambda: (s := service(sup, "victim"))["pid"] not in (None, before["pid"])
                   and s["state"] == "running", 10, "a new victim process")
        assert sup.stop() == 0


def test_unhealthy_is_503(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          core:
            command: ["{py}", "{children}/crasher.py", "1"]
            restart: {backoff: {initial: 0}, max_restarts: 0, cooldown: null}
    """) as s:
        s.wait_state("core", "fatal")
        s.wait_api()
        r = get(s, "/health")
        assert r.status_code == 503 and r.json()["status"] == "unhealthy"
        assert s.stop() == 0


def test_api_port_taken_keeps_supervising(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with SupervisorProcess(tmp_path, f"""
            supervisor: {{state_dir: {tmp_path}/state, port: {port}}}
            services:
              web:
                command: ["{{py}}", "{{children}}/sleeper.py"]
        """) as s:
            s.wait_state("web", "running")
            wait_until(lambda: [r for r in s.records() if "cannot listen" in r.get("event", "")],
                       10, "the bind error", seen=lambda: s.records()[-5:])
            err = next(r for r in s.records() if "cannot listen" in r.get("event", ""))
            assert err["port"] == port and err["level"] == "error"
            assert s.proc.poll() is None
            assert s.stop() == 0
    finally:
        holder.close()


def test_a_private_key_file_is_reused(tmp_path):
    # (one that others could read is replaced: tests/security/test_api_key_file.py)
    state = tmp_path / "state"
    state.mkdir()
    (state / "api_key").write_text("a-key-the-operator-already-had\n")
    os.chmod(state / "api_key", 0o600)
    with SupervisorProcess(tmp_path, """
        services:
          web: {command: ["{py}", "{children}/sleeper.py"]}
    """) as s:
        s.wait_api()
        assert post(s, "/api/services/web/restart", "a-key-the-operator-already-had").status_code == 202
        assert stat.S_IMODE((state / "api_key").stat().st_mode) == 0o600
        assert s.stop() == 0


def test_configured_key_is_used_and_no_file_written(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        supervisor: {{state_dir: {tmp_path}/state, port: {port}, api_key: configured-key-0123456789}}
        services:
          web: {{command: ["{PY}", "{{children}}/sleeper.py"]}}
    """) as s:
        s.wait_api()
        assert post(s, "/api/services/web/stop", "configured-key-0123456789").status_code == 202
        assert not (s.state_dir / "api_key").exists()
        assert s.stop() == 0
