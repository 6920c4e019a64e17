"""Prefixed, coloured child output on the supervisor's stdout, as honcho and compose show it.

A terminal that is slow or paused must never block a child: chunks go through a bounded
queue to one writer thread, and what does not fit is dropped and counted.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from typing import BinaryIO

_COLOURS = (36, 33, 32, 35, 34, 31, 96, 93, 92, 95, 94, 91)
_RESET = b"\x1b[0m"


class Console:
    def __init__(self, stream: BinaryIO | None = None, colour: bool | None = None,
                 max_chunks: int = 512) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        isatty = getattr(self._stream, "isatty", lambda: False)
        self.colour = isatty() if colour is None else colour
        self._queue: queue.Queue[bytes | None] = queue.Queue(max_chunks)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)
        self._thread.start()

    def prefix(self, name: str, index: int, width: int) -> bytes:
        label = f"{name:<{width}} | ".encode()
        if not self.colour:
            return label
        colour = _COLOURS[index % len(_COLOURS)]
        return b"\x1b[%dm" % colour + label + _RESET

    def put(self, data: bytes) -> None:
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        reported = 0
        while (data := self._queue.get()) is not None:
            if self.dropped != reported:
                data = b"console | %d chunks of output dropped (terminal too slow)\n" % (
                    self.dropped - reported) + data
                reported = self.dropped
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):
                pass

    def close(self, timeout: float = 2.0) -> None:
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


class LineFramer:
    """Turns a pipe's chunks into complete prefixed lines, so services never interleave mid-line.

    `redact` sees whole lines only (a secret is never cut in two by a chunk boundary), and
    never the prefix."""

    MAX_PARTIAL = 64 * 1024

    def __init__(self, prefix: bytes, redact: Callable[[bytes], bytes] = lambda b: b) -> None:
        self.prefix = prefix
        self.redact = redact
        self._partial = b""

    def frame(self, chunk: bytes) -> bytes:
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < self.MAX_PARTIAL:
                self._partial = data
                return b""
            data += b"\n"
            cut = len(data)
            self._partial = b""
        else:
            self._partial = data[cut:]
        body = self.redact(data[:cut - 1])   # without the last newline, which stays whatever
        # One C-level replace instead of a Python loop per line: keeps up with floods.
        return self.prefix + body.replace(b"\n", b"\n" + self.prefix) + b"\n"

    def flush(self) -> bytes:
        rest, self._partial = self._partial, b""
        return self.prefix + self.redact(rest) + b"\n" if rest else b""
