"""A deterministic simulated market: each tick's move is a pure function of (seed, tick).

Because a move needs no RNG state, a resumed bot continues the same walk from the price
saved in its checkpoint, and a test can replay the whole run. The normal deviate comes
from sha256 + Box-Muller so any language can reproduce it exactly.
"""

from __future__ import annotations

import hashlib
import math

START_PRICE = 100.0


def normal(seed: int, tick: int) -> float:
    """A standard normal deviate for this (seed, tick)."""
    digest = hashlib.sha256(f"{seed}:{tick}".encode()).digest()
    # Two 53-bit uniforms in (0, 1]; 1 - u keeps log() away from zero.
    u1 = 1.0 - (int.from_bytes(digest[:8], "big") >> 11) / 2**53
    u2 = (int.from_bytes(digest[8:16], "big") >> 11) / 2**53
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def next_price(price: float, seed: int, tick: int, volatility: float) -> float:
    """Geometric random walk step from ``price`` to the price at ``tick``."""
    return price * math.exp(volatility * normal(seed, tick))
