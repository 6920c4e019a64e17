"""circus (pip, bench/.peers/venv) in the foreground: `circusd circus.ini`.

circusd runs the arbiter in its own process; the programs are its direct children. There is no
SIGCHLD handler: a dead process is noticed by the arbiter's periodic check (`check_delay`).
One watcher per program, stdout to a FileStream (no rotation).
Tuned: check_delay 0.01 s, graceful_timeout 1 s, stop_children true, max_retry -1.
Defaults (0.19): check_delay 1 s, graceful_timeout 30 s, stop_children false, max_retry 5.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from common import VENV_BIN, Adapter, Program, wait_until

CIRCUSD = VENV_BIN / "circusd"
CIRCUSCTL = VENV_BIN / "circusctl"


class Circus(Adapter):
    name = "circus"

    @classmethod
    def missing(cls) -> str | None:
        return None if CIRCUSD.exists() else f"not installed ({CIRCUSD} missing: run bench/peers/install.sh)"

    @classmethod
    def version(cls) -> str:
        try:
            return subprocess.run([str(CIRCUSD), "--version"], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except OSError:
            return ""

    def configure(self, programs: list[Program]) -> None:
        d = self.dir
        self.endpoint = f"ipc://{d}/endpoint"
        lines = ["[circus]", f"endpoint = {self.endpoint}", f"pubsub_endpoint = ipc://{d}/pubsub",
                 "statsd = False", f"logoutput = {d}/circusd.log", "loglevel = WARNING"]
        if self.tuned:
            lines.append("check_delay = 0.01")
        lines.append("")
        for p in programs:
            lines += [f"[watcher:{p.name}]", f"cmd = {subprocess.list2cmdline(p.argv)}",
                      "numprocesses = 1", "copy_env = True", f"working_dir = {d}",
                      "stdout_stream.class = FileStream",
                      f"stdout_stream.filename = {self.log_path(p.name)}"]
            if self.tuned:
                lines += ["graceful_timeout = 1", "stop_children = True", "max_retry = -1"]
            lines.append("")
        self.config = d / "circus.ini"
        self.config.write_text("\n".join(lines))

    def launch(self) -> None:
        self.proc = self.spawn([str(CIRCUSD), str(self.config)])

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        return self.run([str(CIRCUSCTL), "--endpoint", self.endpoint, "--timeout", str(int(timeout)),
                         *args], timeout + 5)

    def stop_program(self, name: str) -> None:
        self.ctl("stop", name, "--waiting")
        wait_until(lambda: self.ctl("status", name).strip() == "stopped", 60, f"circus {name} stopped", 0.1)

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ctl("quit", "--waiting")
            finally:
                self.proc.wait(60)
