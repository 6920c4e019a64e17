"""The repository's services.yaml end to end: every NATS client of the application (backend,
bot, gateway) presents the generated NATS_TOKEN, and the broker refuses a client without it."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.errors import Error as NatsError

from harness import wait_until

from .stack import AppStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def test_every_client_of_the_bus_has_the_token_and_a_stranger_is_refused(tmp_path):
    with AppStack(tmp_path, args=("--env", "production")) as app:
        app.wait_healthy(180)
        token = (app.state_dir / "secrets" / "NATS_TOKEN").read_text().strip()
        url = f"nats://127.0.0.1:{app.ports['NATS_PORT']}"
        logs = app.state_dir / "logs"
        wait_until(lambda: "bus connected" in (logs / "node-server.log").read_text(), 60,
                   "the gateway connected to the bus", seen=lambda: (logs / "node-server.log").read_text()[-2000:])
        app.settled_fills(at_least=2, timeout=90)   # the bot's fills reach the ledger over the bus
        assert "Authorization Violation" not in (logs / "nats.log").read_text()

        async def clients() -> list[str]:
            with pytest.raises((NatsError, OSError)):
                stranger = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
                await stranger.close()
            nc = await nats.connect(url, token=token, allow_reconnect=False)
            await nc.close()
            return []
        asyncio.run(clients())
        connz = app.get(f"http://127.0.0.1:{app.ports['NATS_MONITOR_PORT']}/connz").json()
        names = {c.get("name") for c in connz["connections"]}
        assert {"backend", "trading-bot", "node-server"} <= names, names
