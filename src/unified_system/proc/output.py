"""Where a service's output goes: its rotating log file, and the console as `name | line`."""

from __future__ import annotations

from pathlib import Path

from unified_system.proc.console import Console, LineFramer
from unified_system.proc.iothread import PipeReader
from unified_system.proc.logfile import RotatingLog


class ServiceOutput:
    """The sink shared by every instance of one service. Only the I/O thread calls it."""

    def __init__(self, log_path: Path, max_bytes: int, backups: int,
                 console: Console | None, prefix: bytes) -> None:
        self.log = RotatingLog(log_path, max_bytes, backups)
        self.console = console
        self.prefix = prefix

    def feed(self, chunk: bytes, reader: PipeReader) -> None:
        self.log.write(chunk)
        if self.console is not None:
            framer = reader.state.get("framer")
            if framer is None:
                framer = reader.state["framer"] = LineFramer(self.prefix)
            if framed := framer.frame(chunk):
                self.console.put(framed)

    def eof(self, reader: PipeReader) -> None:
        framer = reader.state.get("framer")
        if self.console is not None and framer is not None and (rest := framer.flush()):
            self.console.put(rest)

    def write_line(self, text: str) -> None:
        """A line from the supervisor itself (build progress, markers) into the service log."""
        self.log.write(text.encode() + b"\n")
