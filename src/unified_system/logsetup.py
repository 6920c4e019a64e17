"""Supervisor logging: JSON lines on disk, a readable console, no secrets; structlog's calling
convention on the standard library's `logging` (structlog itself is not imported)."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Full, Queue
from typing import Any, TextIO

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


def _fields(bound: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    fields = {**bound, **kw}
    if _hidden:
        return {k: hide(redact(v, k)) for k, v in fields.items()}
    return {k: redact(v, k) for k, v in fields.items()}


class Logger:
    """structlog's calling convention (`log.info("event", key=value)`, `bind`) over the stdlib
    `logging` the writer thread already renders with. structlog itself is not imported: its
    package imports asyncio and, where installed, rich and pygments, ~17 MB that would stay
    resident in the supervisor for the sake of a dict (bench/RESULTS.md, "Footprint")."""

    __slots__ = ("_bound",)

    def __init__(self, bound: dict[str, Any]) -> None:
        self._bound = bound

    def bind(self, **bound: Any) -> Logger:
        return Logger({**self._bound, **bound})

    def _log(self, level: int, event: str, kw: dict[str, Any], exc_info: bool = False) -> None:
        # The root is looked up at each call, not bound now: configure() may run later.
        root = logging.getLogger("unified")
        if not root.isEnabledFor(level):
            return
        # Redacted here, on the caller's thread: a dict handed in may change after the call.
        info = sys.exc_info() if exc_info else None
        record = root.makeRecord("unified", level, "", 0, str(event), (),
                                 info if info and info[0] is not None else None)
        record.fields = _fields(self._bound, kw)
        root.handle(record)

    def debug(self, event: str, **kw: Any) -> None:
        self._log(logging.DEBUG, event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._log(logging.INFO, event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._log(logging.WARNING, event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._log(logging.ERROR, event, kw)

    def critical(self, event: str, **kw: Any) -> None:
        self._log(logging.CRITICAL, event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        self._log(logging.ERROR, event, kw, exc_info=True)


def _stamp(created: float) -> str:
    """ISO 8601 in UTC with microseconds and a Z, as structlog's TimeStamper wrote it."""
    seconds = int(created)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            + f".{int((created - seconds) * 1e6):06d}Z")


def _event(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """The record as one flat dict: its fields, then event, level, timestamp (and the
    traceback, its text hidden too: a traceback can quote a secret)."""
    fields = getattr(record, "fields", {})  # none on a plain `logging` record: its message only
    event = {**fields, "event": record.getMessage(), "level": record.levelname.lower(),
             "timestamp": _stamp(record.created)}
    if record.exc_info:
        text = formatter.formatException(record.exc_info)
        event["exception"] = _hidden.text(text) if _hidden else text
    return event


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_event(record, self), default=repr)


_PLAIN = re.compile(r"[^\s'\"=\\]*")
_COLOURS = {"debug": "\x1b[34m", "info": "\x1b[32m", "warning": "\x1b[33m",
            "error": "\x1b[31m", "critical": "\x1b[31;1m"}


def _value(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.fullmatch(value):
        return value
    return repr(value)


class _ConsoleFormatter(logging.Formatter):
    """`timestamp [level    ] event          key=value ...`, keys sorted, None dropped."""

    def __init__(self, colors: bool) -> None:
        super().__init__()
        self.colors = colors

    def format(self, record: logging.LogRecord) -> str:
        event = _event(record, self)
        stamp, level, text = event.pop("timestamp"), event.pop("level"), event.pop("event")
        trace = event.pop("exception", None)
        pairs = " ".join(f"{k}={_value(v)}" for k, v in sorted(event.items()) if v is not None)
        if self.colors:
            on, off = _COLOURS.get(level, ""), "\x1b[0m"
            line = (f"\x1b[2m{stamp}{off} [{on}{level:<9}{off}] \x1b[1m{text:<14}{off} "
                    f"{pairs}")
        else:
            line = f"{stamp} [{level:<9}] {text:<14} {pairs}"
        line = line.rstrip()
        return f"{line}\n{trace}" if trace else line


class _PassThrough(logging.Handler):
    """Hands the record over untouched: its fields are rendered by the writer thread.
    (logging.handlers is not imported: it imports pickle, 0.6 MB together, for its socket
    handlers; bench/RESULTS.md "Footprint, third round".)"""

    def __init__(self, queue: Queue[logging.LogRecord | None]) -> None:
        super().__init__()
        self.queue = queue

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.enqueue(record)
        except Exception:  # Full: as QueueHandler, said on stderr by handleError
            self.handleError(record)

    def enqueue(self, record: logging.LogRecord) -> None:
        records = getattr(_held, "records", None)
        if records is not None:
            records.append(record)
        else:
            self.queue.put_nowait(record)


class _RotatingFile(logging.FileHandler):
    """RotatingFileHandler's rotation (file.1 ... file.N), with each record rendered once
    (the stdlib's renders it twice: to measure, then to write). With backups: 0 the file
    starts over at max_bytes (the stdlib's appends for ever)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self.max_bytes, self.backups = max_bytes, backups

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            # never roll anything but a regular file over (bpo-45401: /dev/null, a fifo)
            if (self.max_bytes > 0 and self.stream.seek(0, 2) + len(line) >= self.max_bytes
                    and os.path.isfile(self.baseFilename)):
                self._roll_over()
            self.stream.write(line)
            self.stream.flush()
        except Exception:
            self.handleError(record)

    def _roll_over(self) -> None:
        if self.stream is not None:
            self.stream.close()
        base = self.baseFilename
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                if os.path.exists(f"{base}.{i}"):
                    os.replace(f"{base}.{i}", f"{base}.{i + 1}")
            os.replace(base, f"{base}.1")
        self.stream = self._open()
        if self.backups == 0:
            self.stream.truncate(0)


class _Writer:
    """QueueListener's loop: the thread that renders and writes every record."""

    def __init__(self, queue: Queue[logging.LogRecord | None], *handlers: logging.Handler) -> None:
        self.queue, self.handlers = queue, handlers
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while (record := self.queue.get()) is not None:
            for handler in self.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)

    def stop(self) -> None:
        self.queue.put(None)  # after every record already queued; blocks only while full
        self._thread.join()


_listener: _Writer | None = None
_queue: Queue[logging.LogRecord | None] | None = None
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

    json_fmt = _JsonFormatter()
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        for name, lvl in (("supervisor.log", logging.NOTSET), ("errors.log", logging.ERROR)):
            handler = _RotatingFile(log_dir / name, max_bytes, backups)
            handler.setLevel(lvl)
            handler.setFormatter(json_fmt)
            handlers.append(handler)

    if fmt == "json":
        console_fmt: logging.Formatter = json_fmt
    else:  # auto and console: readable; colours only on a terminal
        console_fmt = _ConsoleFormatter(colors=stream.isatty())
    console = logging.StreamHandler(stream)
    console.setFormatter(console_fmt)
    handlers.append(console)
    _queue = queue = Queue[logging.LogRecord | None](100_000)
    root.addHandler(_PassThrough(queue))
    _listener = _Writer(queue, *handlers)
    _listener.start()


def stop() -> None:
    """Flush and stop the listener (at exit)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        for handler in _listener.handlers:
            handler.close()
        _listener = None


def get_logger(**bound: Any) -> Logger:
    # Binds no handler: each call finds the "unified" logger as configure() left it.
    return Logger(bound)
