"""Supervisor logging through structlog: JSON lines on disk, a readable console, no secrets."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog

SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
REDACTED = "***"


def redact(value: Any, name: str = "") -> Any:
    """Replace the values of secret-looking names, recursively through dicts and lists."""
    if name and SECRET_NAME.search(name) and isinstance(value, (str, bytes, int)):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def _redact_processor(_logger: Any, _name: str, event: dict) -> dict:
    return {k: redact(v, k) for k, v in event.items()}


def _drop_none(_logger: Any, _name: str, event: dict) -> dict:
    return {k: v for k, v in event.items() if v is not None}


_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _redact_processor,
]


def configure(log_dir: Path | None, level: str = "INFO", fmt: str = "auto",
              max_bytes: int = 10_000_000, backups: int = 5,
              stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    root = logging.getLogger("unified")
    root.handlers.clear()
    root.setLevel(level.upper() if level.upper() in logging._nameToLevel else "INFO")
    root.propagate = False

    json_fmt = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        foreign_pre_chain=_SHARED)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        for name, lvl in (("supervisor.log", logging.NOTSET), ("errors.log", logging.ERROR)):
            handler = logging.handlers.RotatingFileHandler(
                log_dir / name, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
            handler.setLevel(lvl)
            handler.setFormatter(json_fmt)
            root.addHandler(handler)

    if fmt == "json":
        console_fmt: logging.Formatter = json_fmt
    else:  # auto and console: readable; colours only on a terminal
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty(), pad_event_to=14)
        console_fmt = structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _drop_none,
                        renderer],
            foreign_pre_chain=_SHARED)
    console = logging.StreamHandler(stream)
    console.setFormatter(console_fmt)
    root.addHandler(console)

    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> structlog.stdlib.BoundLogger:
    # A lazy proxy: binding now would freeze whatever configuration exists at this moment.
    return structlog.get_logger("unified", **bound)
