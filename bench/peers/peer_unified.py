"""unified-system: `python start_system.py run -c services.yaml` in the foreground.

Default settings, except: tuned (crash test) sets `restart: {backoff: {initial: 0},
max_restarts: 1000000}`; service logs get max_bytes 100GB so the flood window sees no rotation.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from common import ROOT, Adapter, Program, wait_until

START = ROOT / "start_system.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Unified(Adapter):
    name = "unified-system"

    @classmethod
    def version(cls) -> str:
        for line in (ROOT / "pyproject.toml").read_text().splitlines():
            if line.startswith("version"):
                return line.split("=")[1].strip().strip('"')
        return ""

    def configure(self, programs: list[Program]) -> None:
        self.state = self.dir / "state"
        services = {}
        for p in programs:
            service: dict = {"command": p.argv}
            if self.tuned:
                service["restart"] = {"policy": "always", "backoff": {"initial": 0},
                                      "max_restarts": 1000000}
            services[p.name] = service
        config = {"supervisor": {"state_dir": str(self.state), "port": free_port(),
                                 "log": {"max_bytes": "100GB", "backups": 1}},
                  "services": services}
        self.config = self.dir / "services.yaml"
        self.config.write_text(json.dumps(config, indent=1))  # JSON is YAML

    def launch(self) -> None:
        self.proc = self.spawn([sys.executable, str(START), "run", "-c", str(self.config)])

    def log_path(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def cli(self, *args: str, timeout: float = 30.0) -> str:
        return self.run([sys.executable, str(START), *args, "-c", str(self.config)], timeout)

    def state_of(self, name: str) -> str:
        services = json.loads(self.cli("status", "--json"))
        return next(s["state"] for s in services if s["name"] == name)

    def stop_program(self, name: str) -> None:
        self.cli("stop", name)  # asynchronous (202 accepted): wait until the service is stopped
        wait_until(lambda: self.state_of(name) == "stopped", 60, f"{name} stopped", interval=0.1)

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
