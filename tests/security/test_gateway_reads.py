"""Threat: anyone who reaches the public gateway (port 3000, on Railway the internet) reads
the supervisor's logs, diagnostics, events and suggestions without a key.

The real Node gateway runs as a service of a real supervisor, as in services.yaml. A client
with a foreign Host and no key (or a wrong one) asks for every supervisor path through it.
Before the fix the gateway rewrote Host to 127.0.0.1 and the supervisor trusted a loopback
Host, so each read answered 200.
"""

from __future__ import annotations

import httpx
import pytest

from harness import ROOT, SupervisorProcess, free_port, wait_until

GATEWAY_DIR = ROOT / "services" / "node-server"
FOREIGN = "evil.example.com"
READS = ["/metrics", "/api/services", "/api/services/web", "/api/services/web/logs?lines=50",
         "/api/diagnostics", "/api/suggestions", "/api/events", "/api/nope"]
WRITES = ["/api/services/web/restart", "/api/services/web/stop", "/api/reload"]


def gateway_stack(tmp_path, open_reads: bool) -> tuple[SupervisorProcess, str]:
    assert (GATEWAY_DIR / "node_modules").is_dir(), "run `npm ci` in services/node-server"
    api, gw = free_port(), free_port()
    opened = "\n          open_reads: true" if open_reads else ""
    sup = SupervisorProcess(tmp_path, f"""
        supervisor:
          state_dir: {tmp_path}/state
          port: {api}{opened}
        services:
          web:
            command: ["{{py}}", "{{children}}/sleeper.py"]
          gateway:
            command: ["node", "src/index.js"]
            cwd: {GATEWAY_DIR}
            env:
              HOST: 127.0.0.1
              PORT: "{gw}"
              SUPERVISOR_URL: "http://127.0.0.1:{api}"
              BACKEND_URL: "http://127.0.0.1:9"
            readiness: {{http: {{url: "http://127.0.0.1:{gw}/health"}}, period: 200ms}}
    """)
    return sup, f"http://127.0.0.1:{gw}"


def status_of(client: httpx.Client, method: str, url: str, headers: dict[str, str]) -> int:
    # A stream, so that an event stream wrongly opened answers its status and is closed.
    with client.stream(method, url, headers=headers) as answer:
        return answer.status_code


@pytest.mark.slow
@pytest.mark.parametrize("open_reads", [False, True], ids=["default", "open_reads"])
def test_no_supervisor_path_but_health_answers_through_the_gateway_without_the_key(
        tmp_path, open_reads):
    sup, gateway = gateway_stack(tmp_path, open_reads)
    with sup:
        sup.wait_api(30)
        wait_until(lambda: sup.state("gateway") == "running" and sup.state("web") == "running",
                   60, "the gateway and web running", seen=lambda: sup.output()[-2000:])
        key = sup.api_key()
        seen: dict[tuple[str, str, str], int] = {}
        with httpx.Client(timeout=httpx.Timeout(10, read=10)) as client:
            for given in (None, "", "wrong-key", key[:-1], f'"{key}"'):
                headers = {"Host": FOREIGN}
                if given is not None:
                    headers["X-API-Key"] = given
                for path in READS:
                    seen[("GET", path, str(given))] = status_of(
                        client, "GET", gateway + "/supervisor" + path, headers)
                for path in WRITES:
                    seen[("POST", path, str(given))] = status_of(
                        client, "POST", gateway + "/supervisor" + path, headers)
            # Without a key, nothing is forwarded. A wrong key is forwarded and refused by the
            # supervisor, except where it asks for no key: /metrics, and a route that does not
            # exist (404 says nothing).
            unkeyed = ("None", "")
            leaked = {k: v for k, v in seen.items() if v != 401
                      and (k[2] in unkeyed or k[1] not in ("/metrics", "/api/nope"))}
            assert leaked == {}, leaked
            # /health stays open (it says only each service's state) ...
            health = client.get(gateway + "/supervisor/health", headers={"Host": FOREIGN})
            assert health.status_code == 200 and set(health.json()["services"]) == {"web", "gateway"}
            # ... and the operator, with the key, reads through the same gateway.
            auth = {"Host": FOREIGN, "X-API-Key": key}
            answer = client.get(gateway + "/supervisor/api/services/web/logs?lines=5", headers=auth)
            assert answer.status_code == 200 and answer.json()["service"] == "web"
            assert status_of(client, "GET", gateway + "/supervisor/api/events", auth) == 200
        assert sup.state("web") == "running"   # no refused write went through
        assert sup.stop() == 0
