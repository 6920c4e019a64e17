"""The real application (services.yaml of the repo) end to end: four services, their health,
the bot's fills reaching the backend, kill -9 of the bot, the gateway's rate limit."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from harness import wait_until

from .stack import AppStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

SERVICES = {"nats", "backend", "trading-bot", "node-server", "frontend"}
HEARTBEAT_TIMEOUT = 10.0  # services.yaml: heartbeat.timeout of backend, bot and node-server


def test_production_stack_comes_up_healthy_and_the_bots_fills_reach_the_backend(tmp_path):
    with AppStack(tmp_path, args=("--env", "production")) as app:
        services = app.wait_healthy()

        assert set(services) == SERVICES
        assert services["frontend"]["state"] == "disabled"  # production: no Vite dev server
        for name in SERVICES - {"frontend"}:
            assert services[name]["health"] == "healthy", services[name]
            assert services[name]["restarts"] == 0, services[name]

        # Each service's own health endpoint, on the port the environment gave it.
        assert app.json(app.backend + "/health")["status"] == "ok"
        assert app.json(app.bot + "/health")["status"] == "ok"
        node = app.json(app.gateway + "/health")
        assert node["status"] == "ok" and node["backend"] == "up"

        # The built dashboard is served by the Node server (its production build step).
        page = app.get(app.gateway + "/")
        assert page.status_code == 200 and '<div id="root">' in page.text
        assert (app.dir / "frontend" / "dist" / "index.html").is_file()

        # The bot (paper mode) posts fills to the backend; the gateway serves them.
        count = app.settled_fills(at_least=2)
        status = app.json(app.bot + "/status")
        assert status["mode"] == "paper"
        trades = app.json(app.gateway + f"/api/trades?limit={count + 100}")["trades"]
        assert {t["source"] for t in trades} == {"trading-bot"}
        assert len(trades) >= count

        # The control API answers through the gateway too (what the dashboard uses).
        proxied = app.json(app.gateway + "/supervisor/api/services")
        assert {s["name"] for s in proxied} == SERVICES

        # Heartbeats: every service with a heartbeat sent one within its timeout for longer
        # than that timeout (the node server's arrive over HTTP, the Python services' over
        # NOTIFY_SOCKET); a missing one would show as a soft freeze.
        wait_until(lambda: min(s["uptime_seconds"] for n, s in app.services().items()
                               if n != "frontend") > HEARTBEAT_TIMEOUT + 1,
                   HEARTBEAT_TIMEOUT + 15, "services up longer than the heartbeat timeout")
        final = app.services()
        assert all(final[n]["health"] == "healthy" for n in SERVICES - {"frontend"}), final
        freezes = [r for r in app.records() if "freeze" in str(r.get("event", ""))]
        assert freezes == []
        assert all(final[n]["restarts"] == 0 for n in SERVICES - {"frontend"}), final

        assert app.stop() == 0
    # Nothing of the application is left listening.
    for port in app.ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)


def test_bot_killed_with_sigkill_resumes_with_the_same_fills_and_no_duplicates(tmp_path):
    with AppStack(tmp_path, args=("--env", "production", "--only", "trading-bot,node-server")) as app:
        app.wait_healthy()
        before = app.settled_fills(at_least=3)
        bot = app.service("trading-bot")
        pid = bot["pid"]
        assert pid and bot["restarts"] == 0

        os.kill(pid, signal.SIGKILL)

        def restarted() -> dict | None:
            s = app.service("trading-bot")
            return s if s["restarts"] == 1 and s["state"] == "running" and s["ready"] \
                and s["pid"] != pid else None
        bot = wait_until(restarted, 30, "the bot restarted after kill -9",
                         seen=lambda: app.service("trading-bot"))
        assert bot["last_exit"]["signal"] == "SIGKILL", bot["last_exit"]
        assert bot["last_exit"]["reason"] == "crash", bot["last_exit"]

        status = app.json(app.bot + "/status")
        assert status["resumed"] is True, status     # it loaded its checkpoint
        assert status["fills"] >= before, (status["fills"], before)   # none lost

        # It keeps trading; the bot's count and the backend's count agree, no fill twice.
        after = app.settled_fills(at_least=before + 1)
        trades = app.json(app.gateway + f"/api/trades?limit={after + 100}")["trades"]
        ids = [t["fill_id"] for t in trades]
        # no fill twice; none lost (the bot may have filled again since the settled count)
        assert len(ids) == len(set(ids)) >= after, (len(ids), len(set(ids)), after)
        seed = status["seed"]
        assert all(i.startswith(f"{seed}-") for i in ids)
        assert app.stop() == 0


def test_gateway_answers_429_past_the_rate_limit(tmp_path):
    limit = 5
    with AppStack(tmp_path, args=("--only", "node-server"),
                  env={"RATE_LIMIT_PER_MINUTE": str(limit)}) as app:
        services = app.wait_healthy()
        assert services["node-server"]["state"] == "running"

        codes = [app.get(app.gateway + "/api/trades/summary").status_code
                 for _ in range(limit + 2)]
        assert codes == [200] * limit + [429, 429], codes
        refused = app.get(app.gateway + "/api/trades/summary")
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert refused.json()["limit_per_minute"] == limit
        # The supervisor's probes are never refused: the gateway stays healthy and up.
        assert app.get(app.gateway + "/health").status_code == 200
        assert app.service("node-server")["ready"] is True
        assert app.stop() == 0
