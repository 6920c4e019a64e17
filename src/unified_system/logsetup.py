"""Supervisor logging through structlog: JSON lines on disk, a readable console, no secrets."""

from __future__ import annotations

import functools
import logging
import logging.handlers
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Full, Queue
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

from unified_system.redaction import NOTHING, REDACTED, SECRET_NAME, Redactor


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    # Every field of every record is asked: the few names there are answer from the cache.
    return SECRET_NAME.search(name) is not None


def redact(value: Any, name: str = "") -> Any:
    """Replace the values of secret-looking names, recursively through dicts and lists."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if name and isinstance(value, (str, bytes, int)) and _secret_name(name):
        return REDACTED
    return value


# Secret values known to the supervisor (the runtime sets them at start, the API's scrubber
# after each reload): hidden wherever they appear in a record's text, such as a config
# error quoting an interpolated value, and in the console's echo of children's output.
_hidden: Redactor = NOTHING


def hide_values(values: tuple[str, ...]) -> None:
    global _hidden
    _hidden = Redactor(values)


def hidden() -> Redactor:
    """The redactor in force now (replaced whole, so a reader needs no lock)."""
    return _hidden


def replace_values(text: str, values: tuple[str, ...]) -> str:
    """`text` with each of `values` replaced by REDACTED (the rules of redaction.Redactor)."""
    return Redactor(values).text(text)


def hide(value: Any) -> Any:
    redactor = _hidden
    if not redactor:
        return value
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {k: hide(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(hide(v) for v in value)
    return value


def _redact_processor(_logger: Any, _name: str, event: EventDict) -> EventDict:
    if _hidden:
        return {k: hide(redact(v, k)) for k, v in event.items()}
    return {k: redact(v, k) for k, v in event.items()}


def _hide_processor(_logger: Any, _name: str, event: EventDict) -> EventDict:
    # After format_exc_info: a traceback's text (rendered after _redact_processor) can
    # quote a secret too.
    if _hidden and isinstance(event.get("exception"), str):
        event["exception"] = _hidden.text(event["exception"])
    return event


def _drop_none(_logger: Any, _name: str, event: EventDict) -> EventDict:
    return {k: v for k, v in event.items() if v is not None}


_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _redact_processor,
]


class _PassThrough(logging.handlers.QueueHandler):
    """Hands the record over untouched: structlog's event dict is rendered by the listener."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        records = getattr(_held, "records", None)
        if records is not None:
            records.append(record)
        else:
            self.queue.put_nowait(record)


class _RotatingFile(logging.handlers.RotatingFileHandler):
    """With backups: 0 the file starts over at max_bytes (the stdlib's appends for ever)."""

    def doRollover(self) -> None:
        super().doRollover()
        if self.backupCount == 0 and self.stream is not None:
            self.stream.truncate(0)


_listener: logging.handlers.QueueListener | None = None
_queue: Queue[logging.LogRecord] | None = None
_held = threading.local()


@contextmanager
def held() -> Iterator[None]:
    """This thread's records reach the writer thread when the block ends, all at once.

    The owner wraps each turn in it. A record put mid-turn wakes the writer, which then
    renders JSON while the owner waits for the GIL to spawn: up to the 5 ms switch interval
    added to a crash-to-restart. (Nested blocks release with the outermost.)"""
    if getattr(_held, "records", None) is not None:
        yield
        return
    _held.records = []
    try:
        yield
    finally:
        records, _held.records = _held.records, None
        if _queue is not None:
            try:
                for record in records:
                    _queue.put_nowait(record)
            except Full:
                pass  # the writer is 100,000 records behind: dropping keeps memory bounded


def configure(log_dir: Path | None, level: str = "INFO", fmt: str = "auto",
              max_bytes: int = 10_000_000, backups: int = 5,
              stream: TextIO | None = None) -> None:
    """Log lines are rendered and written by a listener thread: the owner only enqueues,
    so a slow disk or terminal never stalls supervision."""
    global _listener, _queue
    stop()
    hide_values(())  # the next supervisor's API sets its own
    stream = stream or sys.stderr
    root = logging.getLogger("unified")
    root.handlers.clear()
    root.setLevel(level.upper() if level.upper() in logging._nameToLevel else "INFO")
    root.propagate = False
    handlers: list[logging.Handler] = []

    json_fmt = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, _hide_processor,
                    structlog.processors.JSONRenderer()],
        foreign_pre_chain=_SHARED)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        for name, lvl in (("supervisor.log", logging.NOTSET), ("errors.log", logging.ERROR)):
            handler = _RotatingFile(log_dir / name, maxBytes=max_bytes, backupCount=backups,
                                    encoding="utf-8")
            handler.setLevel(lvl)
            handler.setFormatter(json_fmt)
            handlers.append(handler)

    if fmt == "json":
        console_fmt: logging.Formatter = json_fmt
    else:  # auto and console: readable; colours only on a terminal
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty(), pad_event_to=14)
        console_fmt = structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _drop_none,
                        structlog.processors.format_exc_info, _hide_processor, renderer],
            foreign_pre_chain=_SHARED)
    console = logging.StreamHandler(stream)
    console.setFormatter(console_fmt)
    handlers.append(console)
    _queue = queue = Queue[logging.LogRecord](100_000)
    root.addHandler(_PassThrough(queue))
    _listener = logging.handlers.QueueListener(queue, *handlers, respect_handler_level=True)
    _listener.start()

    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def stop() -> None:
    """Flush and stop the listener (at exit)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        for handler in _listener.handlers:
            handler.close()
        _listener = None


def get_logger(**bound: Any) -> structlog.stdlib.BoundLogger:
    # A lazy proxy: binding now would freeze whatever configuration exists at this moment.
    return structlog.get_logger("unified", **bound)
