"""Request/reply across languages (issue 18, item 4): the Node gateway asks the Python
backend for the trade summary over NATS. Real nats-server, real backend, real gateway."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request

import pytest

from .natsd import NatsServer
from .support import LEDGER_TOKEN, ROOT, NotifyListener, Procs, free_port, http, wait_for

NODE_DIR = ROOT / "services" / "node-server"
TIMEOUT_MS = 1000

pytestmark = pytest.mark.skipif(
    not (NODE_DIR / "node_modules" / "nats").is_dir() or not shutil.which("node"),
    reason="the gateway's node_modules (npm ci in services/node-server)")


@pytest.fixture
def listener():
    lis = NotifyListener()
    yield lis
    lis.close()


def fetch(url: str) -> tuple[int, dict[str, str], dict]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def start_gateway(procs: Procs, broker: NatsServer, backend_port: int) -> str:
    port = free_port()
    env = {"PORT": str(port), "NATS_URL": broker.url, "BACKEND_URL": f"http://127.0.0.1:{backend_port}",
           "BUS_REQUEST_TIMEOUT_MS": str(TIMEOUT_MS), "SUPERVISOR_URL": "http://127.0.0.1:9"}
    procs.start("gateway", ["node", "src/index.js"], NODE_DIR, env)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: fetch(f"{url}/gateway/stats")[0] == 200, 30, "the gateway")
    return url


def test_a_silent_backend_gets_the_last_good_summary_marked_stale_and_none_cached_a_504(
        procs, listener, tmp_path):
    broker = NatsServer(procs, tmp_path / "nats")
    port = free_port()
    backend = procs.backend({"PYTHON_PORT": str(port), "DATA_DIR": str(tmp_path / "data"),
                             "NOTIFY_SOCKET": listener.address, "LOG_LEVEL": "warning",
                             "LEDGER_TOKEN": LEDGER_TOKEN, "NATS_URL": broker.url,
                             "PYTHONPATH": str(ROOT / "src")})
    listener.wait_for("READY=1", timeout=30)
    fill = {"fill_id": "f-1", "side": "sell", "quantity": 2, "price": 10, "realized_pnl": 4.5}
    assert http("POST", f"http://127.0.0.1:{port}/api/trades", fill)[0] == 201
    gateway = start_gateway(procs, broker, port)

    def fresh() -> dict | None:
        status, headers, body = fetch(f"{gateway}/api/trades/summary")
        return body if status == 200 and headers.get("X-Served-Via") == "nats" else None

    good = wait_for(fresh, 30, "a summary answered over NATS by the Python backend")
    assert good["count"] == 1 and good["realized_pnl"] == 4.5 and "stale" not in good

    assert backend.stop() == 0  # the backend goes silent
    started = time.monotonic()
    status, headers, stale = fetch(f"{gateway}/api/trades/summary")
    took = time.monotonic() - started
    assert status == 200, stale
    assert stale["stale"] is True and stale["count"] == 1 and stale["realized_pnl"] == 4.5
    assert float(headers["X-Stale-Age"]) == stale["stale_age_seconds"] >= 0
    # Within the gateway's budget: two tries of TIMEOUT_MS and the 100 ms pause, plus slack
    # for a busy machine.
    assert took < 2 * TIMEOUT_MS / 1000 + 0.1 + 3, took

    # A gateway that never had an answer has nothing to serve: a clear 504.
    second = start_gateway(procs, broker, port)
    status, _, body = fetch(f"{second}/api/trades/summary")
    assert status == 504 and body["error"] == "gateway_timeout", body
