"""The paper-trading engine: pure and deterministic (no clock, no I/O).

``Engine.step()`` advances the market one tick, runs the moving-average crossover and
returns the fill it made, if any. All state lives in one JSON-able dict so that a
checkpoint of it, reloaded, continues exactly where the run left off: same prices, same
signals, same fills, same fill ids. The one random thing is a run's `id_key`, drawn when a
fresh state is made (or given), which makes fill ids unguessable.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from typing import Any

from .config import StrategyConfig
from .market import START_PRICE, next_price

RECENT_FILLS = 50  # fills kept in state for /status; the backend keeps them all


def new_state(cfg: StrategyConfig, id_key: str | None = None) -> dict[str, Any]:
    return {
        "version": 1,
        "seed": cfg.seed,
        "id_key": id_key or secrets.token_hex(16),  # secret: it is in no fill and no answer
        "symbol": cfg.symbol,
        "short_window": cfg.short_window,
        "long_window": cfg.long_window,
        "tick": 0,  # the last tick processed
        "price": START_PRICE,
        "history": [],  # the last long_window prices
        "signal": 0,  # sign(short MA - long MA) at the last tick, 0 = not yet known
        "cash": cfg.starting_cash,
        "positions": {},  # symbol -> {"quantity", "avg_price"}
        "realized_pnl": 0.0,
        "orders_count": 0,
        "fills_count": 0,
        "recent_fills": [],
        "outbox": [],  # fills not yet acknowledged by the backend
    }


def fill_id(seed: int, tick: int, id_key: str) -> str:
    """At most one fill per tick, so (seed, tick) names it across restarts; the keyed tag
    keeps the next id unguessable, so nobody can plant it in the ledger first."""
    tag = hmac.new(id_key.encode(), f"{seed}-{tick}".encode(), hashlib.sha256).hexdigest()[:20]
    return f"{seed}-{tick}-{tag}"


class Engine:
    def __init__(self, cfg: StrategyConfig, state: dict[str, Any] | None = None,
                 id_key: str | None = None):
        self.cfg = cfg
        self.state = copy.deepcopy(state) if state is not None else new_state(cfg, id_key)
        # A checkpoint from before id keys: its later fills get a key of their own.
        self.state.setdefault("id_key", id_key or secrets.token_hex(16))

    def step(self) -> dict[str, Any] | None:
        s = self.state
        tick = s["tick"] + 1
        price = next_price(s["price"], s["seed"], tick, self.cfg.volatility)
        history = (s["history"] + [price])[-s["long_window"]:]
        s["tick"], s["price"], s["history"] = tick, price, history
        if len(history) < s["long_window"]:
            return None
        short = sum(history[-s["short_window"]:]) / s["short_window"]
        long = sum(history) / len(history)
        signal = (short > long) - (short < long)
        previous, s["signal"] = s["signal"], signal
        held = self.position()["quantity"]
        if previous == -1 and signal == 1 and held == 0:
            return self._fill("buy", self.cfg.order_quantity, price, tick)
        if previous == 1 and signal == -1 and held > 0:
            return self._fill("sell", held, price, tick)
        return None

    def position(self) -> dict[str, float]:
        return self.state["positions"].get(self.state["symbol"], {"quantity": 0.0, "avg_price": 0.0})

    def _fill(self, side: str, quantity: float, price: float, tick: int) -> dict[str, Any]:
        s = self.state
        pos = dict(self.position())
        realized = None
        if side == "buy":
            cost = pos["quantity"] * pos["avg_price"] + quantity * price
            pos["quantity"] += quantity
            pos["avg_price"] = cost / pos["quantity"]
            s["cash"] -= quantity * price
        else:
            realized = (price - pos["avg_price"]) * quantity
            pos["quantity"] -= quantity
            s["cash"] += quantity * price
            s["realized_pnl"] += realized
            if pos["quantity"] == 0:
                pos["avg_price"] = 0.0
        s["positions"][s["symbol"]] = pos
        s["orders_count"] += 1  # paper market orders fill at once: one order, one fill
        s["fills_count"] += 1
        fill = {
            "fill_id": fill_id(s["seed"], tick, s["id_key"]),
            "order_id": s["orders_count"],
            "symbol": s["symbol"],
            "side": side,
            "quantity": quantity,
            "price": price,
            "realized_pnl": realized,
            "tick": tick,
            "source": "trading-bot",
        }
        s["recent_fills"] = (s["recent_fills"] + [fill])[-RECENT_FILLS:]
        s["outbox"].append(fill)
        return fill

    def summary(self) -> dict[str, Any]:
        s = self.state
        pos = self.position()
        unrealized = (s["price"] - pos["avg_price"]) * pos["quantity"] if pos["quantity"] else 0.0
        return {
            "tick": s["tick"],
            "price": round(s["price"], 6),
            "cash": round(s["cash"], 6),
            "positions": s["positions"],
            "orders": s["orders_count"],
            "fills": s["fills_count"],
            "pending_deliveries": len(s["outbox"]),
            "pnl": {
                "realized": round(s["realized_pnl"], 6),
                "unrealized": round(unrealized, 6),
                "total": round(s["realized_pnl"] + unrealized, 6),
            },
            "equity": round(s["cash"] + pos["quantity"] * s["price"], 6),
            "recent_fills": s["recent_fills"][-10:],
        }


def simulate(cfg: StrategyConfig, ticks: int, id_key: str | None = None) -> list[dict[str, Any]]:
    """Every fill of a fresh run through ``ticks`` ticks (for tests and replays; the run's
    `id_key` from its checkpoint gives the same fill ids)."""
    engine = Engine(cfg, id_key=id_key)
    fills = []
    while engine.state["tick"] < ticks:
        fill = engine.step()
        if fill:
            fills.append(fill)
    return fills
