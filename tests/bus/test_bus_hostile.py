"""The bus against the worst input (issue 18): a token with quotes, backslashes and control
characters; a client without the token; garbage, forged and oversized messages on
`fills.>`. Real nats-server (services/nats/launch.py), real backend, real nats-py."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys

import httpx
import nats
import pytest
from nats.errors import Error as NatsError

from harness import PY, ROOT, free_port, wait_until

pytestmark = [pytest.mark.timeout(180)]

TOKEN = 'q"uo\\te $NATS {x}\n\ttab\x01'


class Broker:
    def __init__(self, tmp, token: str | None = TOKEN) -> None:
        self.port, self.monitor = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.store = tmp / "nats"
        env = {**os.environ, "CHECKPOINT_DIR": str(self.store)}
        if token:
            env["NATS_TOKEN"] = token
        self.proc = subprocess.Popen(
            [PY, "launch.py", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor)],
            cwd=ROOT / "services" / "nats", env=env, stdout=open(tmp / "nats.log", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.healthy, 30, "nats-server healthy", seen=lambda: (tmp / "nats.log").read_text())

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true",
                             timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


async def _connect(url: str, token: str | None):  # type: ignore[no-untyped-def]
    return await nats.connect(url, token=token, allow_reconnect=False, connect_timeout=5,
                              max_reconnect_attempts=0)


def test_a_token_with_quotes_and_control_characters_is_required_and_in_no_argv(broker):
    async def check() -> None:
        with pytest.raises((NatsError, OSError)):
            nc = await _connect(broker.url, None)
            await nc.close()
        with pytest.raises((NatsError, OSError)):
            nc = await _connect(broker.url, TOKEN + "x")
            await nc.close()
        nc = await _connect(broker.url, TOKEN)
        await nc.close()
    asyncio.run(check())
    cmdline = open(f"/proc/{broker.proc.pid}/cmdline", "rb").read().decode()
    assert "nats-server" in cmdline and "te $NATS" not in cmdline   # exec'd; no secret in argv
    conf = broker.store / "config" / "auth.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600


def test_garbage_forged_and_oversized_messages_never_reach_the_ledger(broker, tmp_path):
    http = free_port()
    backend = subprocess.Popen(
        [PY, "-m", "backend"], cwd=ROOT / "services" / "backend",
        env={**os.environ, "NATS_URL": broker.url, "NATS_TOKEN": TOKEN, "PYTHON_PORT": str(http),
             "CHECKPOINT_DIR": str(tmp_path / "backend"), "PYTHONPATH": str(ROOT / "src")},
        stdout=open(tmp_path / "backend.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{http}"
    try:
        wait_until(lambda: _get(base + "/health"), 60, "the backend",
                   seen=lambda: (tmp_path / "backend.log").read_text()[-2000:])
        valid = {"fill_id": "42-7-abc", "symbol": "SIM", "side": "buy", "quantity": 10,
                 "price": 101.5, "tick": 7, "source": "trading-bot"}
        bad = [b"", b"\xff\xfe not json", b"[]", b"null", json.dumps({"fill_id": "x"}).encode(),
               json.dumps({**valid, "fill_id": "nan", "price": float("nan")}).encode(),
               json.dumps({**valid, "fill_id": "huge", "quantity": 1e308}).encode(),
               json.dumps({**valid, "fill_id": "../../etc; DROP TABLE trades"}).encode(),
               json.dumps({**valid, "fill_id": "pad", "source": "x" * 900_000}).encode()]

        async def publish() -> None:
            nc = await _connect(broker.url, TOKEN)
            js = nc.jetstream()
            wait = 30.0
            while True:   # the backend creates FILLS when it connects
                try:
                    await js.stream_info("FILLS")
                    break
                except NatsError:
                    wait -= 0.1
                    assert wait > 0, "no FILLS stream"
                    await asyncio.sleep(0.1)
            for i, body in enumerate(bad):
                await js.publish(f"fills.bad{i}", body)
            await js.publish("fills.SIM", json.dumps(valid).encode(), headers={"Nats-Msg-Id": "42-7-abc"})
            # a forged second copy of a known fill, with another price: the first one stays
            await js.publish("fills.SIM", json.dumps({**valid, "price": 1.0}).encode())
            await nc.close()
        asyncio.run(publish())

        wait_until(lambda: (_get(base + "/api/trades/summary") or {}).get("count") == 1, 30,
                   "the valid fill in the ledger", seen=lambda: _get(base + "/api/trades?limit=10"))
        trades = _get(base + "/api/trades?limit=10")["trades"]
        assert [(t["fill_id"], t["price"]) for t in trades] == [("42-7-abc", 101.5)]

        async def consumer_settled() -> tuple[int, int]:
            nc = await _connect(broker.url, TOKEN)
            info = await nc.jetstream().consumer_info("FILLS", "backend-ledger")
            await nc.close()
            return info.num_pending, info.num_ack_pending
        # every message consumed, the bad ones terminated: nothing left to redeliver
        wait_until(lambda: asyncio.run(consumer_settled()) == (0, 0), 30, "no message pending",
                   seen=lambda: asyncio.run(consumer_settled()))
        assert backend.poll() is None and _get(base + "/health")["status"] == "ok"
        assert "no fill" in (tmp_path / "backend.log").read_text()
    finally:
        backend.terminate()
        backend.wait(30)


def _get(url: str):  # type: ignore[no-untyped-def]
    try:
        answer = httpx.get(url, timeout=5)
        return answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
