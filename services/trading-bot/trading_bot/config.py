"""Bot settings from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


def _bool(raw: str | None, default: bool) -> bool:
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class StrategyConfig:
    seed: int = 42
    short_window: int = 5
    long_window: int = 20
    order_quantity: float = 10.0
    starting_cash: float = 100_000.0
    volatility: float = 0.01  # standard deviation of a tick's log return
    symbol: str = "SIM"


@dataclass(frozen=True)
class BotConfig:
    enabled: bool
    mode: str
    host: str
    port: int
    tick_interval: float
    backend_url: str
    checkpoint_dir: str | None
    strategy: StrategyConfig
    ledger_token: str | None = None   # the backend's write token (Authorization: Bearer)
    nats_url: str | None = None       # the bus (NATS_URL): fills go to JetStream; None: HTTP POST


def from_env(environ: Mapping[str, str] | None = None) -> BotConfig:
    env = os.environ if environ is None else environ
    strategy = StrategyConfig(
        seed=int(env.get("BOT_SEED", "42")),
        short_window=int(env.get("BOT_SHORT_WINDOW", "5")),
        long_window=int(env.get("BOT_LONG_WINDOW", "20")),
        order_quantity=float(env.get("BOT_ORDER_QTY", "10")),
        starting_cash=float(env.get("BOT_STARTING_CASH", "100000")),
        volatility=float(env.get("BOT_VOLATILITY", "0.01")),
        symbol=env.get("BOT_SYMBOL", "SIM"),
    )
    if not 1 <= strategy.short_window < strategy.long_window:
        raise ValueError("need 1 <= BOT_SHORT_WINDOW < BOT_LONG_WINDOW")
    backend = env.get("BACKEND_URL") or f"http://127.0.0.1:{env.get('PYTHON_PORT', '8000')}"
    return BotConfig(
        enabled=_bool(env.get("BOT_ENABLED"), default=True),
        mode=env.get("TRADING_MODE", "paper").strip().lower() or "paper",
        host=env.get("BOT_HOST", env.get("HOST", "127.0.0.1")),
        port=int(env.get("BOT_PORT", "9000")),
        tick_interval=float(env.get("BOT_TICK_INTERVAL", "0.2")),
        backend_url=backend.rstrip("/"),
        checkpoint_dir=env.get("CHECKPOINT_DIR") or None,
        strategy=strategy,
        ledger_token=env.get("LEDGER_TOKEN") or None,
        nats_url=env.get("NATS_URL") or None,
    )
