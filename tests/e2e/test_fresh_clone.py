"""A fresh clone, as a host deploy or the systemd unit gets it: `git clone` of this checkout's
committed HEAD into a temporary directory (no node_modules, no .venv, no frontend/dist), then
`python start_system.py [--env production]` there, on ports from the OS. Every build step runs
for real (pip, `npm ci`, `vite build`), every enabled service must come up running and ready,
the gateway must serve the dashboard, and a SIGTERM to the supervisor must leave no process.

Issue 15 item 1: under `--env production` the node-server's build step inherited
NODE_ENV=production, its `npm ci` of the dashboard skipped devDependencies, vite was missing
and node-server went `fatal`.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from harness import ROOT, free_port, wait_until

from .stack import PORT_VARS

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

# npm ci of both packages from an empty cache, pip and vite build on a busy 2-core machine
BUILD_DEADLINE = 900.0


def fresh_clone(dest: Path) -> Path:
    """`git clone` of the committed HEAD of the checkout the tests run in."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(dest)], check=True)
    # A local clone copies every object, so a detached HEAD of the checkout is there too.
    subprocess.run(["git", "-C", str(dest), "checkout", "--quiet", "--detach", head], check=True)
    for absent in ("services/node-server/node_modules", "frontend/node_modules", "frontend/dist",
                   ".venv", ".unified-system"):
        assert not (dest / absent).exists(), f"{absent} is in the clone"
    return dest


class ClonedApp:
    """`python start_system.py run` of the clone, with its own start_system.py and .env-less
    config: every port through the variables services.yaml reads (.env.example lists them)."""

    def __init__(self, root: Path, args: tuple[str, ...]) -> None:
        self.root = root
        self.args = args
        self.ports = {name: free_port() for name in PORT_VARS}
        self.key = secrets.token_urlsafe(24)
        self.env = {**os.environ, **{name: str(port) for name, port in self.ports.items()},
                    "SUPERVISOR_API_KEY": self.key, "LOG_LEVEL": "INFO"}
        for var in ("NODE_ENV", "UNIFIED_CONFIG"):  # the test decides, not the caller's shell
            self.env.pop(var, None)
        self.out_path = root.parent / "supervisor.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: set[int] = set()  # every pid seen in the supervisor's tree

    def __enter__(self) -> ClonedApp:
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "start_system.py", "run", *self.args],
                                         cwd=self.root, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def url(self, var: str) -> str:
        return f"http://127.0.0.1:{self.ports[var]}"

    def get(self, url: str) -> httpx.Response:
        return httpx.get(url, headers={"X-API-Key": self.key}, timeout=5)

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")[-4000:]

    def remember_tree(self) -> None:
        assert self.proc is not None
        try:
            self.seen.update(p.pid for p in psutil.Process(self.proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass

    def services(self) -> dict[str, dict[str, Any]] | None:
        try:
            answer = self.get(self.url("SUPERVISOR_PORT") + "/api/services")
            return {s["name"]: s for s in answer.json()} if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def all_up(self) -> dict[str, dict[str, Any]] | None:
        """Every enabled service running and ready, and /health healthy; else None."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the supervisor exited {self.proc.returncode}: {self.output()}")
        self.remember_tree()
        services = self.services()
        if not services:
            return None
        if any(s["state"] == "fatal" for s in services.values()):
            raise AssertionError(f"a service went fatal: { {n: s['state'] for n, s in services.items()} }"
                                 f"\n{self.output()}")
        enabled = [s for s in services.values() if s["state"] != "disabled"]
        try:
            health = self.get(self.url("SUPERVISOR_PORT") + "/health")
        except httpx.HTTPError:
            return None
        if health.status_code == 200 and health.json()["status"] == "healthy" \
                and all(s["state"] == "running" and s["ready"] for s in enabled):
            return services
        return None

    def stop_and_find_nothing_left(self) -> None:
        assert self.proc is not None
        self.remember_tree()
        tree = set(self.seen)
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(120) == 0, self.output()

        def alive() -> list[str]:
            out = []
            for pid in tree:
                try:
                    proc = psutil.Process(pid)
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        out.append(f"{pid} {' '.join(proc.cmdline())[:120]}")
                except psutil.NoSuchProcess:
                    pass
            return out
        wait_until(lambda: not alive(), 15, "no process of the application left", seen=alive)
        for port in self.ports.values():   # nothing of the application still listens
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def dashboard_served(app: ClonedApp, base: str) -> None:
    """The page and the script it loads (the built bundle, or Vite's dev module)."""
    page = app.get(base + "/")
    assert page.status_code == 200 and '<div id="root">' in page.text, (base, page.status_code, page.text[:300])
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page.text)
    assert scripts, page.text[:500]
    for src in scripts:
        script = app.get(base + src)
        assert script.status_code == 200 and "javascript" in script.headers["content-type"], \
            (base + src, script.status_code, script.headers.get("content-type"))


def test_fresh_clone_runs_in_production(tmp_path):
    root = fresh_clone(tmp_path / "clone")
    with ClonedApp(root, ("--env", "production")) as app:
        services = wait_until(app.all_up, BUILD_DEADLINE, "every enabled service running and ready",
                              seen=lambda: ({n: (s["state"], s["ready"]) for n, s in (app.services() or {}).items()},
                                            app.output()))
        assert services["frontend"]["state"] == "disabled"   # production: no Vite dev server
        assert {n for n, s in services.items() if s["state"] == "running"} \
            == {"nats", "backend", "trading-bot", "node-server"}
        assert (root / "frontend" / "dist" / "index.html").is_file()
        dashboard_served(app, app.url("PORT"))
        assert app.get(app.url("PORT") + "/health").json()["backend"] == "up"
        app.stop_and_find_nothing_left()


def test_fresh_clone_runs_in_development(tmp_path):
    root = fresh_clone(tmp_path / "clone")
    with ClonedApp(root, ()) as app:
        services = wait_until(app.all_up, BUILD_DEADLINE, "every enabled service running and ready",
                              seen=lambda: ({n: (s["state"], s["ready"]) for n, s in (app.services() or {}).items()},
                                            app.output()))
        assert {n for n, s in services.items() if s["state"] == "running"} \
            == {"nats", "backend", "trading-bot", "node-server", "frontend"}
        dashboard_served(app, app.url("PORT"))            # the gateway serves the built dashboard
        dashboard_served(app, app.url("FRONTEND_PORT"))   # and the Vite dev server its own
        app.stop_and_find_nothing_left()
