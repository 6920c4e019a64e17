"""Where a service's output goes: its rotating log file, and the console as `name | line`."""

from __future__ import annotations

import time
from pathlib import Path

from unified_system import logsetup
from unified_system.proc.console import Console, LineFramer
from unified_system.proc.iothread import PipeReader
from unified_system.proc.logfile import RotatingLog
from unified_system.proc.quiet import Quiet

CONSOLE_RATE = 1_000_000     # bytes/s of one service's output echoed to the console
CONSOLE_BURST = 4_000_000


def _redact(lines: bytes) -> bytes:
    """The secrets in force now (a reload may have changed them since the framer was made)."""
    return logsetup.hidden().raw(lines)


class ServiceOutput:
    """The sink shared by every instance of one service. Only the I/O thread calls it.

    Everything goes to the log file. The console is for people: past CONSOLE_RATE a
    service's output is not framed and echoed (framing is most of the cost of a flood),
    and once a second the console says how much it left out.
    """

    def __init__(self, log_path: Path, max_bytes: int, backups: int,
                 console: Console | None, prefix: bytes) -> None:
        self.log = RotatingLog(log_path, max_bytes, backups)
        self.console = console
        self.prefix = prefix
        self._tokens = float(CONSOLE_BURST)
        self._refilled = time.monotonic()
        self._skipped = 0
        self.quiet: Quiet | None = None   # set unless `run --verbose`: see proc/quiet.py

    def feed(self, chunk: bytes | memoryview, reader: PipeReader) -> None:
        self.log.write(chunk)
        if self.console is None:
            return
        now = time.monotonic()
        self._tokens = min(CONSOLE_BURST, self._tokens + (now - self._refilled) * CONSOLE_RATE)
        self._refilled = now
        framer = reader.state.get("framer")
        if framer is None:
            framer = reader.state["framer"] = LineFramer(self.prefix, _redact)
        if self._tokens < len(chunk):
            self._skipped += len(chunk)
            if self._skipped and now - reader.state.get("noted", 0.0) >= 1.0:
                reader.state["noted"] = now
                self.console.put(self.prefix + b"[%d bytes of fast output not shown here: "
                                 b"all of it is in %s]\n" % (self._skipped, str(self.log.path).encode()))
                self._skipped = 0
            return
        self._tokens -= len(chunk)
        if framed := framer.frame(chunk):
            if self.quiet is not None:
                framed = self.quiet.filter(framed, reader.state, now)
            if framed:
                self.console.put(framed)

    def console_budget(self) -> int:
        """Bytes the console would show now. The I/O thread reads at most that much, and
        splices whatever the console would not show straight into the log."""
        if self.console is None:
            return 0
        now = time.monotonic()
        self._tokens = min(CONSOLE_BURST, self._tokens + (now - self._refilled) * CONSOLE_RATE)
        self._refilled = now
        return int(self._tokens)

    def splice(self, reader: PipeReader, most: int) -> int | None:
        moved = self.log.splice_from(reader.fd, most)
        if moved is None:
            return None
        if self.console is not None and moved:
            self._skipped += moved
            now = time.monotonic()
            if now - reader.state.get("noted", 0.0) >= 1.0:
                reader.state["noted"] = now
                self.console.put(self.prefix + b"[%d bytes of fast output not shown here: "
                                 b"all of it is in %s]\n" % (self._skipped, str(self.log.path).encode()))
                self._skipped = 0
        return moved

    def eof(self, reader: PipeReader) -> None:
        framer = reader.state.get("framer")
        if self.console is not None and framer is not None and (rest := framer.flush()):
            if self.quiet is not None:
                rest = self.quiet.filter(rest, reader.state, time.monotonic())
            if rest:
                self.console.put(rest)

    def write_line(self, text: str) -> None:
        """A line from the supervisor itself (build progress, markers) into the service log."""
        self.log.write(text.encode() + b"\n")

    def build_sink(self) -> ServiceOutput | BuildSink:
        """Where a build's output goes: the log, and the console only under `--verbose`."""
        return self if self.quiet is None else BuildSink(self)

    def console_line(self, text: str) -> None:
        """A line of the supervisor's about this service on the console (build progress)."""
        if self.console is not None:
            self.console.put(self.prefix + logsetup.hidden().raw(text.encode()) + b"\n")


class BuildSink:
    """A build's output (npm's, say) into the service's log only: the console gets one
    progress line instead (core/builds.py), and the last lines if the build fails."""

    def __init__(self, output: ServiceOutput) -> None:
        self.output = output

    def feed(self, chunk: bytes | memoryview, reader: PipeReader) -> None:
        self.output.log.write(chunk)

    def eof(self, reader: PipeReader) -> None:
        pass
