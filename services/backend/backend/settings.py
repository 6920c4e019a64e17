"""Backend settings, read once from the environment (and ``--host/--port`` flags)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


@dataclass(frozen=True)
class AISettings:
    rate_limit: float = 5.0  # tasks started per second (token bucket refill rate)
    burst: float = 5.0  # bucket capacity
    max_attempts: int = 3  # then the task goes to the dead-letter list
    backoff_initial: float = 0.5  # seconds before the first retry
    backoff_multiplier: float = 2.0
    backoff_max: float = 30.0


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    data_dir: Path
    ai_enabled: bool
    ai: AISettings
    log_level: str
    ledger_token: str | None = None   # writes need it (Authorization: Bearer); None: no writes
    tasks_token: str | None = None    # TASKS_TOKEN: may only re-queue/drop dead letters (gateway)
    nats_url: str | None = None       # the bus (NATS_URL): fills are consumed from it; None: HTTP only

    @property
    def db_path(self) -> Path:
        return self.data_dir / "backend.sqlite3"


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    # DATA_DIR wins; else the supervisor-provided checkpoint dir, which survives restarts.
    data_dir = env.get("DATA_DIR") or env.get("CHECKPOINT_DIR") or "./data"
    ai = AISettings(
        rate_limit=float(env.get("AI_RATE_LIMIT", AISettings.rate_limit)),
        burst=float(env.get("AI_BURST", env.get("AI_RATE_LIMIT", AISettings.burst))),
        max_attempts=int(env.get("AI_MAX_ATTEMPTS", AISettings.max_attempts)),
        backoff_initial=float(env.get("AI_BACKOFF_INITIAL", AISettings.backoff_initial)),
        backoff_multiplier=float(env.get("AI_BACKOFF_MULTIPLIER", AISettings.backoff_multiplier)),
        backoff_max=float(env.get("AI_BACKOFF_MAX", AISettings.backoff_max)),
    )
    return Settings(
        host=env.get("HOST", "127.0.0.1"),
        port=int(env.get("PYTHON_PORT", "8000")),
        data_dir=Path(data_dir).resolve(),
        ai_enabled=parse_bool(env.get("AI_ENABLED"), default=False),
        ai=ai,
        log_level=env.get("LOG_LEVEL", "INFO").lower(),
        ledger_token=env.get("LEDGER_TOKEN") or None,
        tasks_token=env.get("TASKS_TOKEN") or None,
        nats_url=env.get("NATS_URL") or None,
    )
