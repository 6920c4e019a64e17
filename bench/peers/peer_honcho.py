"""honcho (pip, bench/.peers/venv): `honcho start -f Procfile`, a foreground Procfile runner.

honcho runs each Procfile line as `/bin/sh -c LINE` under one helper process (multiprocessing)
per line, and prints every line of output, prefixed with time and name, to its own stdout,
which is sent to a file here. It never restarts anything: when one process exits it stops the
others and exits. It has no per-process stop, so "stop a program" is SIGTERM to honcho.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
from pathlib import Path

from common import VENV_BIN, Adapter, Program

HONCHO = VENV_BIN / "honcho"
STOP_WAIT = 10.0


class Honcho(Adapter):
    name = "honcho"
    restarts = False

    @classmethod
    def missing(cls) -> str | None:
        return None if HONCHO.exists() else f"not installed ({HONCHO} missing: run bench/peers/install.sh)"

    @classmethod
    def version(cls) -> str:
        try:
            return subprocess.run([str(HONCHO), "--version"], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except OSError:
            return ""

    def configure(self, programs: list[Program]) -> None:
        self.config = self.dir / "Procfile"
        self.config.write_text("".join(f"{p.name}: {shlex.join(p.argv)}\n" for p in programs))
        (self.dir / ".env").write_text("")  # honcho reads .env from the app root: keep it empty

    def launch(self) -> None:
        self.out = open(self.dir / "honcho.out", "wb")
        self.proc = self.spawn([str(HONCHO), "start", "-f", str(self.config), "-d", str(self.dir),
                                "--no-colour"], stdout=self.out, stderr=subprocess.STDOUT)

    def log_path(self, name: str) -> Path:
        return self.dir / "honcho.out"

    def stop_program(self, name: str) -> None:
        self.graceful()

    def shutdown(self) -> None:
        """SIGTERM, as Ctrl-C would. honcho exits once every program's output pipe closes; a
        grandchild that ignores SIGTERM holds the pipe open and honcho waits for it forever
        (its SIGKILL escalation only runs after a program exits on its own), so give up
        after STOP_WAIT and record that."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_WAIT)
                except subprocess.TimeoutExpired:
                    self.note = f"honcho still running {STOP_WAIT:.0f} s after SIGTERM"
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self.out.close()
