"""Threat: anyone who reaches the public gateway writes the trade ledger.

Seen before the fix: `POST /api/trades` through the gateway accepted a forged fill; the bot's
fill ids were predictable (`42-<tick>`), so a planted id made the bot's real fill vanish
(`INSERT OR IGNORE`), and a forged `realized_pnl: -1e15` went into the summary.

The real application (the repo's services.yaml: backend, bot, gateway) runs under a real
supervisor. Forged fills, planted ids and huge numbers go through the real gateway; the
ledger must end up holding exactly the bot's fills.
"""

from __future__ import annotations

import stat

import httpx
import pytest
from apps.support import BOT_DIR  # noqa: F401  # puts the bot's package on sys.path
from e2e.stack import AppStack
from trading_bot.config import StrategyConfig
from trading_bot.engine import simulate

from harness import wait_until
from unified_system.child.checkpoint import Checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def forged(fill_id: str) -> dict:
    return {"fill_id": fill_id, "symbol": "SIM", "side": "sell", "quantity": 10, "price": 100.0,
            "realized_pnl": -1e15, "source": "trading-bot"}


def test_a_forged_fill_through_the_gateway_is_refused_and_the_bots_fills_are_all_there(tmp_path):
    # The rate limit is not under test here: it must not answer in the ledger's place. A
    # slow liveness period: on a loaded machine the backend may take seconds to listen.
    with AppStack(tmp_path, args=("--env", "production", "--only", "trading-bot,node-server"),
                  env={"RATE_LIMIT_PER_MINUTE": "100000", "HEALTH_CHECK_INTERVAL": "10"}) as app:
        app.wait_healthy()
        before = app.settled_fills(at_least=3)
        secret = app.state_dir / "secrets" / "LEDGER_TOKEN"
        token = secret.read_text().strip() if secret.exists() else "(no LEDGER_TOKEN file)"

        status = app.json(app.bot + "/status")
        seed, tick = status["seed"], status["tick"]
        known = [t["fill_id"] for t in app.json(app.gateway + "/api/trades?limit=10000")["trades"]]
        # The ids the bot will use next, as they used to be guessed; and one shaped like today's.
        planted = [f"{seed}-{tick + k}" for k in range(1, 200)]
        planted.append(f"{known[0].rsplit('-', 1)[0]}-{'0' * 20}")
        tries = {
            "no credentials": {},
            "a wrong bearer": {"Authorization": "Bearer forged-token"},
            "a bare scheme": {"Authorization": "Bearer"},
            "the token as Basic": {"Authorization": f"Basic {token}"},
            "a prefix of it": {"Authorization": f"Bearer {token[:-1]}"},
            "the supervisor's key": {"Authorization": f"Bearer {app.api_key()}",
                                     "X-API-Key": app.api_key()},
            "quotes": {"Authorization": f'Bearer "{token}"'},
        }
        answers = {}
        with httpx.Client(timeout=10) as client:
            for what, headers in tries.items():
                for fill_id in planted[:20] + planted[-1:]:
                    answer = client.post(app.gateway + "/api/trades", json=forged(fill_id),
                                         headers={"Host": "evil.example.com", **headers})
                    answers[(what, fill_id)] = answer.status_code
        accepted = {k: v for k, v in answers.items() if v not in (401, 403)}
        assert accepted == {}, accepted
        # The rate limit never answered instead of the ledger (then nothing would be proven).
        assert set(answers.values()) <= {401, 403}
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
        assert len(token) >= 40

        with httpx.Client(timeout=10) as client:
            # Even the bot's own token cannot push numbers past the model's bounds.
            bot = {"Authorization": f"Bearer {token}"}
            for bad in ({"realized_pnl": -1e15}, {"quantity": 1e300}, {"price": 1e12}):
                body = {**forged(f"{seed}-bounded"), "realized_pnl": 0.0, **bad}
                assert client.post(app.gateway + "/api/trades", json=body,
                                   headers=bot).status_code == 422, bad

        app.settled_fills(at_least=before + 3, timeout=60)
        # A clean stop delivers every fill; the bot's checkpoint then says which it made.
        stop = httpx.post(app.api_url + "/api/services/trading-bot/stop", headers=app.auth(),
                          timeout=10)
        assert stop.status_code == 202, stop.text
        wait_until(lambda: app.service("trading-bot")["state"] == "stopped", 30, "the bot stopped",
                   seen=lambda: app.service("trading-bot"))
        state = Checkpoint(app.state_dir / "checkpoints" / "trading-bot").load()
        assert state is not None and state["outbox"] == []
        made = [f["fill_id"] for f in simulate(StrategyConfig(seed=state["seed"]), state["tick"],
                                               id_key=state["id_key"])]
        trades = app.json(app.gateway + "/api/trades?limit=10000")["trades"]
        ids = [t["fill_id"] for t in trades]
        assert len(ids) == len(set(ids)), "a fill twice"
        assert sorted(ids) == sorted(made), "the ledger is not exactly the bot's fills"
        assert len(ids) == state["fills_count"] > before
        assert not set(planted) & set(ids)
        assert {t["source"] for t in trades} == {"trading-bot"}
        assert all(abs(t["realized_pnl"] or 0) < 1e9 for t in trades)
        # Unguessable: each id carries a keyed tag beyond "<seed>-<tick>".
        assert all(len(i.split("-")) == 3 and len(i.split("-")[2]) == 20 for i in ids), ids[:3]
        summary = app.json(app.gateway + "/api/trades/summary")
        assert summary["realized_pnl"] == pytest.approx(state["realized_pnl"], abs=1e-3)

        # The token is the children's, never the API's: redacted from every answer.
        for path in ("/api/services/backend", "/api/services/trading-bot",
                     "/api/services/backend/logs?lines=1000", "/api/diagnostics"):
            text = app.get(app.api_url + path).text
            assert token not in text, path
        assert app.stop() == 0
