"""PM2 (npm, bench/.peers/npm) with PM2_HOME in the temp dir: `pm2 start ecosystem.config.js`.

The `pm2` CLI starts (or talks to) the God daemon, which forks the apps: the daemon's pid is in
$PM2_HOME/pm2.pid, and it is the process measured. Apps run in fork mode with
`interpreter: none`, so each program is a direct child of the daemon.
Tuned: restart_delay 0, min_uptime 0, max_restarts 1000000, kill_timeout 300 ms.
Defaults (PM2 7): autorestart, restart_delay 0, min_uptime 1 s, max_restarts 16 unstable
restarts, kill_timeout 1600 ms, treekill on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from common import PEERS_DIR, Adapter, Program, alive, wait_until

NPM = PEERS_DIR / "npm"
PM2_BIN = NPM / "node_modules" / ".bin" / "pm2"


class PM2(Adapter):
    name = "PM2"

    @classmethod
    def missing(cls) -> str | None:
        return None if PM2_BIN.exists() else f"not installed ({PM2_BIN} missing: run bench/peers/install.sh)"

    @classmethod
    def version(cls) -> str:
        try:
            return json.loads((NPM / "node_modules" / "pm2" / "package.json").read_text())["version"]
        except OSError:
            return ""

    @property
    def env(self) -> dict:
        return {**os.environ, "PM2_HOME": str(self.dir / "home")}

    def configure(self, programs: list[Program]) -> None:
        apps = []
        for p in programs:
            app = {"name": p.name, "script": p.argv[0], "args": p.argv[1:], "interpreter": "none",
                   "cwd": str(self.dir), "autorestart": True,
                   "out_file": str(self.log_path(p.name)), "error_file": str(self.dir / f"{p.name}.err")}
            if self.tuned:
                app.update(restart_delay=0, min_uptime=0, max_restarts=1000000, kill_timeout=300)
            apps.append(app)
        self.config = self.dir / "ecosystem.config.js"
        self.config.write_text("module.exports = " + json.dumps({"apps": apps}, indent=1) + ";\n")

    def launch(self) -> None:
        self.proc = self.spawn([str(PM2_BIN), "start", str(self.config)], env=self.env)

    def daemon_pid(self) -> int | None:
        try:
            pid = int((self.dir / "home" / "pm2.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def failed(self) -> str | None:
        return None  # the CLI exits once the daemon has the apps; daemon_pid tells the rest

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.out"

    def pm2(self, *args: str, timeout: float = 60.0) -> str:
        return self.run([str(PM2_BIN), *args], timeout, env=self.env)

    def status(self, name: str) -> str:
        for app in json.loads(self.pm2("jlist")):
            if app["name"] == name:
                return app["pm2_env"]["status"]
        return "?"

    def stop_program(self, name: str) -> None:
        self.pm2("stop", name)
        wait_until(lambda: self.status(name) == "stopped", 60, f"pm2 {name} stopped", interval=0.1)

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            self.proc.wait(60)
        if self.daemon_pid() is not None or (self.dir / "home" / "rpc.sock").exists():
            self.pm2("kill")
