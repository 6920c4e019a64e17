"""The console a person can read: which of a child's lines it shows, and a count of the rest.

Every line still goes to logs/<service>.log; this only decides the echo (SPEC §5, `run
--verbose` shows everything). Children's output is free-form, on one pipe for stdout and
stderr, so a line is judged by what it says:

- a JSON object with a `level` / `levelname` / `severity` / `lvl` field: that level (pino's
  numbers too: 40 and up is a warning);
- else the first level word in it (TRACE, DEBUG, INFO, NOTICE, WARN, WARNING, ERROR, ERR,
  CRITICAL, FATAL, PANIC, SEVERE, any case), so uvicorn's `INFO: ... 500 Internal Server Error`
  is info;
- `Traceback (most recent call last):` and `SomeError: ...` / `SomeException: ...` lines are
  errors, and so are the indented lines after an error (a stack trace stays whole);
- a line with none of these is shown, up to UNMARKED_BURST per window per service.

Shown: warnings and above, and unmarked lines within their burst. Summarised: info and below,
and unmarked lines past the burst, as `name | 25 lines in the last 5 s: <log file>`.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Protocol

WINDOW = 5.0
UNMARKED_BURST = 20

_INFO = frozenset({b"trace", b"debug", b"info", b"notice", b"verbose", b"silly", b"http"})
_JSON_LEVEL = re.compile(rb'"(?:level|levelname|severity|lvl)"\s*:\s*"?([A-Za-z]+|\d+)')
_LEVEL_WORD = re.compile(
    rb"(?<![A-Za-z0-9_])(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|PANIC|"
    rb"SEVERE)(?![A-Za-z0-9_])", re.IGNORECASE)
_EXCEPTION = re.compile(rb"(Traceback \(most recent call last\)|[\w.]*(Error|Exception)\b:?)")

INFO, SHOW, UNMARKED = 0, 1, 2


class _Put(Protocol):
    def put(self, data: bytes) -> None: ...


def level_of(line: bytes) -> int:
    """INFO (summarise), SHOW (a warning or an error) or UNMARKED, for one line without its
    prefix. Pure: tested by a table."""
    body = line.lstrip()
    if body.startswith(b"{"):
        found = _JSON_LEVEL.search(body)
        if found:
            level = found.group(1).lower()
            if level.isdigit():
                return SHOW if int(level) >= 40 else INFO
            return INFO if level in _INFO else SHOW
    if _EXCEPTION.match(body):
        return SHOW
    word = _LEVEL_WORD.search(body)
    if word:
        return INFO if word.group(1).lower() in _INFO else SHOW
    return UNMARKED


class Summaries:
    """Counts of lines left out, per service, written to the console once per WINDOW by a
    thread that sleeps without a timeout while nothing was left out (no idle wake-ups)."""

    def __init__(self, console: _Put, window: float = WINDOW) -> None:
        self.console = console
        self.window = window
        self._counts: dict[bytes, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._pending = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-summary", daemon=True)
        self._thread.start()

    def count(self, prefix: bytes, log_path: str, lines: int) -> None:
        with self._lock:
            old = self._counts.get(prefix, (0, log_path))[0]
            self._counts[prefix] = (old + lines, log_path)
        self._pending.set()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._pending.wait()
            self._closed.wait(self.window)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
            self._pending.clear()
        for prefix, (lines, path) in counts.items():
            self.console.put(prefix + b"%d lines in the last %g s: %s\n" % (
                lines, self.window, path.encode()))

    def close(self) -> None:
        self._closed.set()
        self._pending.set()
        self._thread.join(2.0)
        self.flush()


class Quiet:
    """One service's filter. Only the I/O thread calls it (per-pipe state lives in `state`)."""

    def __init__(self, summaries: Summaries, prefix: bytes, log_path: str) -> None:
        self.summaries = summaries
        self.prefix = prefix
        self.log_path = log_path
        self._window_start = -1e9
        self._unmarked = 0

    def filter(self, framed: bytes, state: dict[str, Any], now: float) -> bytes:
        """The prefixed lines of `framed` the console shows; the others are counted."""
        if now - self._window_start >= self.summaries.window:
            self._window_start, self._unmarked = now, 0
        cut = len(self.prefix)
        shown: list[bytes] = []
        left_out = 0
        following = state.get("quiet_following", False)   # inside a shown stack trace
        for line in framed.split(b"\n")[:-1]:
            body = line[cut:]
            if following and body[:1] in (b" ", b"\t"):
                shown.append(line)
                continue
            level = level_of(body)
            if level == UNMARKED:
                self._unmarked += 1
                level = SHOW if self._unmarked <= UNMARKED_BURST else INFO
                following = False
            else:
                following = level == SHOW
            if level == SHOW:
                shown.append(line)
            else:
                left_out += 1
        state["quiet_following"] = following
        if left_out:
            self.summaries.count(self.prefix, self.log_path, left_out)
        return b"".join(line + b"\n" for line in shown)
