"""The trading bot: deterministic engine units, and real runs against a real backend."""

from __future__ import annotations

import json
import signal

import pytest
from trading_bot.config import StrategyConfig, from_env  # noqa: E402
from trading_bot.engine import Engine, simulate  # noqa: E402
from trading_bot.market import next_price, normal  # noqa: E402

from unified_system.child.checkpoint import Checkpoint

from .support import BOT_DIR, LEDGER_TOKEN, NotifyListener, Procs, free_port, get, third_party_imports, wait_for

TICK = "0.005"  # seconds: fast enough for dozens of fills in a couple of seconds


# -- the engine, in process ------------------------------------------------------------------
def test_same_seed_same_fills_and_a_different_seed_differs():
    first = simulate(StrategyConfig(seed=42), 600, id_key="k")
    assert first == simulate(StrategyConfig(seed=42), 600, id_key="k")
    assert len(first) >= 20  # the strategy trades regularly
    assert [f["fill_id"].rsplit("-", 1)[0] for f in first][:2] == ["42-25", "42-48"]
    # the ids of another run (another id_key) cannot be told from these: unguessable
    unkeyed = simulate(StrategyConfig(seed=42), 600)
    assert [f["price"] for f in unkeyed] == [f["price"] for f in first]
    assert not {f["fill_id"] for f in unkeyed} & {f["fill_id"] for f in first}
    assert {f["side"] for f in first} == {"buy", "sell"}
    other = simulate(StrategyConfig(seed=7), 600)
    assert [f["price"] for f in other] != [f["price"] for f in first]
    assert normal(42, 5) == normal(42, 5) != normal(42, 6)
    assert next_price(100.0, 42, 1, 0.0) == 100.0


def test_resuming_from_a_json_checkpoint_gives_the_uninterrupted_run():
    cfg = StrategyConfig(seed=3)
    whole = simulate(cfg, 500, id_key="k")
    engine = Engine(cfg, id_key="k")
    fills = []
    while engine.state["tick"] < 500:
        if engine.state["tick"] in (123, 321):  # "restart": only what a checkpoint keeps
            engine = Engine(cfg, json.loads(json.dumps(engine.state)))
        if (fill := engine.step()) is not None:
            fills.append(fill)
    assert fills == whole


def test_pnl_and_positions_are_consistent():
    cfg = StrategyConfig(seed=42)
    engine = Engine(cfg)
    for _ in range(400):
        engine.step()
    s = engine.state
    sells = [f for f in simulate(cfg, 400) if f["side"] == "sell"]
    assert s["realized_pnl"] == pytest.approx(sum(f["realized_pnl"] for f in sells))
    summary = engine.summary()
    assert summary["equity"] == pytest.approx(cfg.starting_cash + summary["pnl"]["total"])


def test_config_defaults_and_backend_url_from_python_port():
    cfg = from_env({"PYTHON_PORT": "8123"})
    assert cfg.mode == "paper" and cfg.port == 9000 and cfg.tick_interval == 0.2
    assert cfg.backend_url == "http://127.0.0.1:8123" and cfg.strategy.seed == 42
    with pytest.raises(ValueError):
        from_env({"BOT_SHORT_WINDOW": "30", "BOT_LONG_WINDOW": "20"})


def test_the_bot_imports_only_the_standard_library_and_the_child_helpers():
    found = third_party_imports("trading_bot.__main__", ("unified_system", "trading_bot"), BOT_DIR)
    assert found == "[]"


# -- real processes ------------------------------------------------------------------------------
@pytest.fixture
def listeners():
    made: list[NotifyListener] = []

    def make() -> NotifyListener:
        made.append(NotifyListener())
        return made[-1]

    yield make
    for lis in made:
        lis.close()


def test_live_mode_is_refused_with_exit_2(procs, tmp_path):
    proc = procs.bot({"TRADING_MODE": "live", "CHECKPOINT_DIR": str(tmp_path / "cp")})
    assert proc.wait(20) == 2
    assert "no live broker is implemented" in proc.output()


def test_disabled_bot_exits_0(procs, tmp_path):
    proc = procs.bot({"BOT_ENABLED": "false", "CHECKPOINT_DIR": str(tmp_path / "cp")})
    assert proc.wait(20) == 0
    assert "BOT_ENABLED is false" in proc.output()


class Stack:
    """A backend and a bot wired together on free ports."""

    def __init__(self, procs: Procs, listeners, tmp_path):
        self.procs, self.listeners, self.tmp = procs, listeners, tmp_path
        self.backend_port, self.bot_port = free_port(), free_port()
        self.backend_url = f"http://127.0.0.1:{self.backend_port}"
        self.bot_url = f"http://127.0.0.1:{self.bot_port}"
        self.checkpoint_dir = tmp_path / "bot-checkpoints"
        self.backend = self.start_backend()

    def start_backend(self):
        lis = self.listeners()
        backend = self.procs.backend({"PYTHON_PORT": str(self.backend_port),
                                      "DATA_DIR": str(self.tmp / "backend"),
                                      "NOTIFY_SOCKET": lis.address, "LOG_LEVEL": "warning",
                                      "LEDGER_TOKEN": LEDGER_TOKEN})
        lis.wait_for("READY=1", timeout=20)
        return backend

    def start_bot(self, **env: str):
        lis = self.listeners()
        bot = self.procs.bot({"PYTHON_PORT": str(self.backend_port), "BOT_PORT": str(self.bot_port),
                              "BOT_TICK_INTERVAL": TICK, "CHECKPOINT_DIR": str(self.checkpoint_dir),
                              "NOTIFY_SOCKET": lis.address, "WATCHDOG_USEC": "100000",
                              "LEDGER_TOKEN": LEDGER_TOKEN, **env})
        lis.wait_for("READY=1", timeout=20)
        return bot, lis

    def backend_fill_ids(self) -> list[str]:
        return [t["fill_id"] for t in get(f"{self.backend_url}/api/trades?limit=10000")["trades"]]

    def backend_count(self) -> int:
        return get(f"{self.backend_url}/api/trades/summary")["count"]

    def assert_backend_matches_replay(self) -> dict:
        """After a clean stop: the backend holds exactly the fills a fresh replay makes."""
        state = Checkpoint(self.checkpoint_dir).load()
        assert state["outbox"] == [], "a clean stop delivers everything it can"
        ids = self.backend_fill_ids()
        assert len(ids) == len(set(ids)), "duplicate fills at the backend"
        expected = [f["fill_id"] for f in simulate(StrategyConfig(seed=42), state["tick"],
                                                   id_key=state["id_key"])]
        assert sorted(ids) == sorted(expected), "lost or extra fills"  # no gaps, no extras
        assert len(ids) == state["fills_count"]
        return state


def test_fills_reach_the_backend_and_a_sigterm_stops_cleanly(procs, listeners, tmp_path):
    stack = Stack(procs, listeners, tmp_path)
    bot, lis = stack.start_bot()
    lis.wait_for("WATCHDOG=1", timeout=5)  # heartbeats from the trading loop
    wait_for(lambda: stack.backend_count() >= 5, 20, "5 fills at the backend")
    status = get(f"{stack.bot_url}/status")
    assert status["mode"] == "paper" and status["tick"] > 0 and status["fills"] >= 5
    assert set(status["pnl"]) == {"realized", "unrealized", "total"}
    assert get(f"{stack.bot_url}/health")["status"] == "ok"
    assert bot.stop(signal.SIGTERM) == 0, bot.output()
    lis.wait_for("STOPPING=1", timeout=5)
    state = stack.assert_backend_matches_replay()
    summary = get(f"{stack.backend_url}/api/trades/summary")
    assert summary["realized_pnl"] == pytest.approx(state["realized_pnl"], abs=1e-5)


def test_kill_9_then_restart_loses_and_duplicates_no_fill(procs, listeners, tmp_path):
    stack = Stack(procs, listeners, tmp_path)
    bot, _ = stack.start_bot()
    wait_for(lambda: stack.backend_count() >= 8, 20, "8 fills at the backend")
    assert bot.stop(signal.SIGKILL) == -signal.SIGKILL  # no chance to flush or checkpoint
    killed_at = Checkpoint(stack.checkpoint_dir).load()
    assert killed_at is not None and killed_at["fills_count"] >= 8

    bot, _ = stack.start_bot()
    status = get(f"{stack.bot_url}/status")
    assert status["resumed"] is True and status["tick"] >= killed_at["tick"]
    wait_for(lambda: get(f"{stack.bot_url}/status")["fills"] >= killed_at["fills_count"] + 8,
             20, "8 more fills after the restart")
    assert bot.stop(signal.SIGTERM) == 0, bot.output()
    state = stack.assert_backend_matches_replay()
    assert state["fills_count"] >= killed_at["fills_count"] + 8


def test_fills_queued_while_the_backend_is_down_survive_a_kill_9(procs, listeners, tmp_path):
    stack = Stack(procs, listeners, tmp_path)
    bot, _ = stack.start_bot()
    wait_for(lambda: stack.backend_count() >= 3, 20, "3 fills at the backend")
    assert stack.backend.stop(signal.SIGTERM) == 0
    wait_for(lambda: get(f"{stack.bot_url}/status")["pending_deliveries"] >= 3, 20,
             "3 fills queued for the absent backend")
    assert bot.stop(signal.SIGKILL) == -signal.SIGKILL
    queued = Checkpoint(stack.checkpoint_dir).load()["outbox"]
    assert len(queued) >= 3  # the retry queue is part of the checkpoint

    stack.backend = stack.start_backend()  # same port, same database
    bot, _ = stack.start_bot()
    wait_for(lambda: set(f["fill_id"] for f in queued) <= set(stack.backend_fill_ids()), 20,
             "the queued fills to arrive after the restart")
    assert bot.stop(signal.SIGTERM) == 0, bot.output()
    stack.assert_backend_matches_replay()
