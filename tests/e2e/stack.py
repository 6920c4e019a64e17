"""The real application (the repo's services.yaml) under a real supervisor, in a tmp copy.

`app_dir()` copies services.yaml, .env.example (as .env), services/ and frontend/ into a
directory, linking the heavy parts (node_modules, src/) instead of copying them. `AppStack`
runs `start_system.py run` there with every port taken from the OS and passed through the
environment, which is what services.yaml interpolates.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from harness import ROOT, SupervisorProcess, free_port, wait_until

PORT_VARS = ("PORT", "PYTHON_PORT", "BOT_PORT", "FRONTEND_PORT", "SUPERVISOR_PORT", "NATS_PORT",
             "NATS_MONITOR_PORT")
# Never copied: installed dependencies (linked instead), build output, local state.
_SKIP = shutil.ignore_patterns("node_modules", "dist", "data", "__pycache__", "*.pyc",
                               ".unified-system", ".pytest_cache")


def app_dir(dest: Path) -> Path:
    """A runnable copy of the application in `dest` (a fresh clone, minus the installs)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "services.yaml", dest / "services.yaml")
    shutil.copy2(ROOT / ".env.example", dest / ".env")
    for part in ("services", "frontend"):
        shutil.copytree(ROOT / part, dest / part, ignore=_SKIP, symlinks=True)
    for pkg in (Path("services/node-server"), Path("frontend")):
        modules = ROOT / pkg / "node_modules"
        assert modules.is_dir(), f"{modules} is missing: run `npm ci` there (or bash .ci/run)"
        os.symlink(modules, dest / pkg / "node_modules")
    os.symlink(ROOT / "src", dest / "src")  # what the services' PYTHONPATH (../../src) names
    return dest


class AppStack(SupervisorProcess):
    """`start_system.py run` on the copied services.yaml, on free ports."""

    def __init__(self, tmp_path: Path, *, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        root = app_dir(tmp_path / "app")
        self.ports = {name: free_port() for name in PORT_VARS}
        overrides = {name: str(port) for name, port in self.ports.items()}
        # Liveness every 10 s: at a load of 20 on 2 cores the backend took over 4 s to listen,
        # and a 2 s period (3 failures) killed it while it started, until its circuit opened.
        overrides.update({"SUPERVISOR_API_KEY": "", "BOT_TICK_INTERVAL": "0.05",
                          "HEALTH_CHECK_INTERVAL": "10", "LOG_LEVEL": "INFO"})
        overrides.update(env or {})
        super().__init__(root, (root / "services.yaml").read_text(), args=args, env=overrides)
        for var in ("UNIFIED_CONFIG", "NODE_ENV"):  # the test decides, not the caller's shell
            if var not in (env or {}):
                self.env.pop(var, None)
        self.state_dir = root / ".unified-system"  # services.yaml's state_dir

    # -- addresses ------------------------------------------------------------------
    def api_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.ports["SUPERVISOR_PORT"]

    def url(self, var: str) -> str:
        return f"http://127.0.0.1:{self.ports[var]}"

    @property
    def gateway(self) -> str:
        return self.url("PORT")

    @property
    def backend(self) -> str:
        return self.url("PYTHON_PORT")

    @property
    def bot(self) -> str:
        return self.url("BOT_PORT")

    # -- reading --------------------------------------------------------------------
    def get(self, url: str, **kw: Any) -> httpx.Response:
        if url.startswith((self.api_url + "/api/", self.gateway + "/supervisor/")):
            kw.setdefault("headers", self.auth())   # reads need the key (SPEC §6)
        return httpx.get(url, timeout=5, **kw)

    def json(self, url: str) -> Any:
        response = self.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:500])
        return response.json()

    def services(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.json(self.api_url + "/api/services")}

    def service(self, name: str) -> dict[str, Any]:
        return self.json(f"{self.api_url}/api/services/{name}")

    def _all_up(self) -> bool:
        try:
            health = self.get(self.api_url + "/health")
            services = self.services()
        except httpx.HTTPError:
            return False
        # `disabled` by the config, `stopped` when left out by `run --only`
        enabled = [s for s in services.values() if s["state"] not in ("disabled", "stopped")]
        return (health.status_code == 200 and health.json()["status"] == "healthy"
                and all(s["state"] == "running" and s["ready"] for s in enabled))

    def wait_healthy(self, timeout: float = 90.0) -> dict[str, dict[str, Any]]:
        """Until the supervisor reports healthy and every service it runs running and ready."""
        self.wait_api(timeout)
        wait_until(self._all_up, timeout, "every service running and ready",
                   seen=lambda: {r.get("service"): r.get("state") for r in self.records()
                                 if r.get("event") == "state"} or self.output()[-3000:])
        return self.services()

    def fills(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(bot /status, backend trade summary read through the gateway)."""
        return self.json(self.bot + "/status"), self.json(self.gateway + "/api/trades/summary")

    def settled_fills(self, at_least: int, timeout: float = 30.0) -> int:
        """Wait until the bot has made `at_least` fills and the backend holds every one of
        them (nothing left in the bot's outbox); return that count."""
        def settled() -> int | None:
            before, summary = self.fills()
            after = self.json(self.bot + "/status")
            if (before["fills"] == after["fills"] == summary["count"] >= at_least
                    and after["pending_deliveries"] == 0):
                return summary["count"]
            return None
        return wait_until(settled, timeout, f"{at_least}+ fills delivered to the backend",
                          seen=self.fills)
