"""supervisord (pip, bench/.peers/venv) in the foreground: `supervisord -n -c supervisord.conf`.

Programs are direct children of supervisord. Logs go to one file per program, no rotation.
Tuned: startsecs=0, startretries=1000000, autorestart=true, stopasgroup=true,
killasgroup=true, stopwaitsecs=1.
Defaults (4.x): startsecs=1, startretries=3, autorestart=unexpected, stopasgroup=false,
killasgroup=false, stopwaitsecs=10.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from common import VENV_BIN, Adapter, Program

SUPERVISORD = VENV_BIN / "supervisord"
SUPERVISORCTL = VENV_BIN / "supervisorctl"


def quote(arg: str) -> str:
    # supervisord splits `command` with shlex; '%' starts an expansion and must be doubled.
    return subprocess.list2cmdline([arg]).replace("%", "%%")


class Supervisord(Adapter):
    name = "supervisord"

    @classmethod
    def missing(cls) -> str | None:
        return None if SUPERVISORD.exists() else f"not installed ({SUPERVISORD} missing: run bench/peers/install.sh)"

    @classmethod
    def version(cls) -> str:
        try:
            return subprocess.run([str(SUPERVISORD), "--version"], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except OSError:
            return ""

    def configure(self, programs: list[Program]) -> None:
        d = self.dir
        lines = [
            "[supervisord]", "nodaemon=true", f"logfile={d}/supervisord.log", f"pidfile={d}/supervisord.pid",
            f"childlogdir={d}", "loglevel=warn", "",
            "[unix_http_server]", f"file={d}/supervisor.sock", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{d}/supervisor.sock", "",
        ]
        for p in programs:
            lines += [f"[program:{p.name}]", "command=" + " ".join(quote(a) for a in p.argv),
                      f"directory={d}", "redirect_stderr=true",
                      f"stdout_logfile={self.log_path(p.name)}", "stdout_logfile_maxbytes=0"]
            if self.tuned:
                lines += ["startsecs=0", "startretries=1000000", "autorestart=true",
                          "stopasgroup=true", "killasgroup=true", "stopwaitsecs=1"]
            lines.append("")
        self.config = d / "supervisord.conf"
        self.config.write_text("\n".join(lines))

    def launch(self) -> None:
        self.proc = self.spawn([str(SUPERVISORD), "-n", "-c", str(self.config)])

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        return self.run([str(SUPERVISORCTL), "-c", str(self.config), *args], timeout)

    def stop_program(self, name: str) -> None:
        self.ctl("stop", name)  # synchronous: returns once the program is STOPPED

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ctl("shutdown")
            finally:
                self.proc.wait(60)
