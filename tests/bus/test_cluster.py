"""Beyond one host, on one host: three nats-server nodes as three services of one
services.yaml (cluster routes on loopback ports), FILLS replicated 3 times, and a kill -9 of
one node while the bot publishes: no fill the broker acked is lost (issue 18, item 6)."""

from __future__ import annotations

import os
import signal

import pytest

from harness import wait_until

from .support import BusApp
from .test_fills_kill import DEADLINE, FILLS, settle_and_check

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("which", ["leader", "follower"])
def test_kill_9_of_one_of_three_replicating_nodes_loses_no_acked_fill(tmp_path, which):
    with BusApp(tmp_path, nodes=3) as app:
        app.wait_ready(180)
        wait_until(lambda: app.bot_fills() >= FILLS // 4 and app.ledger(), DEADLINE,
                   "the bot publishing and the backend consuming", seen=app.bot_status)
        leader = wait_until(app.stream_leader, 30, "FILLS to have a leader")
        assert app._stream(0)["config"]["num_replicas"] == 3
        victim = leader if which == "leader" else next(n for n in app.nodes if n != leader)
        node = app.service(victim)
        os.kill(node["pid"], signal.SIGKILL)
        # R3 keeps a quorum of two: the bot's publishes are acked through the outage.
        wait_until(lambda: app.bot_fills() >= FILLS, DEADLINE, f"{FILLS} fills", seen=app.bot_status)
        wait_until(lambda: (s := app.service(victim))["ready"] and s["pid"] != node["pid"], 90,
                   f"{victim} restarted", seen=lambda: app.service(victim))
        settle_and_check(app)
        # Every node, the restarted one included, ends with every fill once.
        for index in range(3):
            wait_until(lambda i=index: app.stream_messages(i) == app.stream_messages(0), 60,
                       f"node {index + 1} caught up",
                       seen=lambda: [app.stream_messages(i) for i in range(3)])
