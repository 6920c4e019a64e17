"""`export kubernetes` writes Deployments that can run (issue 15 item 4): no `--fd` or
`fd://` (a pod has no LISTEN_FDS: uvicorn died with ENOTSOCK), no bind to loopback (nothing
outside the pod could reach it), no header naming a secrets.example.yaml that is not written.
Every file passes the real `kubernetes-validate --strict`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from harness import ROOT
from unified_system.config import load_config
from unified_system.export import ExportError, run_export

K8S_VERSION = "1.30.0"

CONFIG = """
services:
  api:
    command: ["python", "-m", "uvicorn", "app:app", "--fd", "3", "--proxy-headers"]
    listen: [{port: 8000, name: http}]
  wsgi:
    command: ["python", "-m", "gunicorn", "-b", "fd://3", "--bind=fd://4", "app:app"]
    listen: [{port: 8001}, {port: 8011}]
  legacy:
    command: ["python", "-m", "gunicorn", "--bind=127.0.0.1:8002", "-b", "localhost:8012", "app:app"]
    readiness: {http: {url: "http://127.0.0.1:8002/health"}}
  files:
    command: ["python", "-m", "http.server", "--bind", "127.0.0.1", "8003"]
    readiness: {tcp: {port: 8003}}
  gateway:
    command: ["python", "-m", "http.server", "8004"]
    env: {HOST: 127.0.0.1, BACKEND_URL: "http://127.0.0.1:8000"}
    readiness: {tcp: {port: 8004}}
"""


def project(root: Path, text: str) -> object:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "services.yaml"
    path.write_text(textwrap.dedent(text))
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    return load_config(path, environ=env)


def validate_strict(paths: list[Path]) -> None:
    """The real kubernetes-validate program, strict: unknown fields are errors."""
    exe = shutil.which("kubernetes-validate")
    assert exe, "kubernetes-validate is not installed (pyproject.toml [test])"
    done = subprocess.run([exe, "--strict", "-k", K8S_VERSION, *map(str, paths)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def containers(paths: list[Path]) -> dict[str, dict]:
    out = {}
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Deployment":
                out[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]["containers"][0]
    return out


def assert_runnable(paths: list[Path]) -> dict[str, dict]:
    validate_strict(paths)
    found = containers(paths)
    for name, c in found.items():
        argv = [*c["command"], *c["args"]]
        assert not any(a == "--fd" or a.startswith("--fd=") or "fd://" in a for a in argv), (name, argv)
        assert not any("127.0.0.1" in a or "localhost" in a for a in argv), (name, argv)
    names = {p.name for p in paths}
    for path in paths:
        if "secrets.example.yaml" in path.read_text():
            assert "secrets.example.yaml" in names, f"{path.name} names a file that is not written"
    return found


def test_fd_and_loopback_arguments_are_rewritten(tmp_path):
    paths = run_export("kubernetes", project(tmp_path / "proj", CONFIG), tmp_path / "out")
    found = assert_runnable(paths)
    assert "secrets.example.yaml" not in {p.name for p in paths}
    assert found["api"]["args"] == ["-m", "uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000",
                                    "--proxy-headers"]
    assert found["wsgi"]["args"] == ["-m", "gunicorn", "-b", "0.0.0.0:8001", "--bind=0.0.0.0:8011", "app:app"]
    assert found["legacy"]["args"] == ["-m", "gunicorn", "--bind=0.0.0.0:8002", "-b", "0.0.0.0:8012", "app:app"]
    assert found["files"]["args"] == ["-m", "http.server", "--bind", "0.0.0.0", "8003"]
    env = {e["name"]: e.get("value") for e in found["gateway"]["env"]}
    assert env["HOST"] == "0.0.0.0" and env["BACKEND_URL"] == "http://api:8000"
    # each rewrite is said, on the Deployment
    text = (tmp_path / "out" / "api.yaml").read_text()
    assert "--fd 3 -> --host 0.0.0.0 --port 8000" in text


@pytest.mark.parametrize("command, message", [
    (["python", "-m", "myserver", "--fd", "3"], "--fd 3"),             # bind flags unknown
    (["python", "-m", "uvicorn", "app:app", "--fd", "4"], "fd 4"),      # no 2nd listen socket
    (["python", "-m", "uvicorn", "app:app", "--fd=x"], "--fd x"),
    (["python", "-m", "gunicorn", "-b", "fd://9", "app:app"], "fd 9"),
])
def test_arguments_that_cannot_work_in_a_pod_are_refused(tmp_path, command, message):
    text = f"""
        services:
          api:
            command: {command!r}
            listen: [{{port: 8000}}]
    """
    with pytest.raises(ExportError) as refused:
        run_export("kubernetes", project(tmp_path / "proj", text), tmp_path / "out")
    assert message in str(refused.value) and "'api'" in str(refused.value), str(refused.value)
    assert not (tmp_path / "out").exists()   # nothing written


@pytest.mark.parametrize("env_name", [None, "production"])
def test_this_repositorys_services_yaml_exports_runnable_manifests(tmp_path, env_name):
    environ = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    loaded = load_config(ROOT / "services.yaml", env_name=env_name, environ=environ)
    paths = run_export("kubernetes", loaded, tmp_path / "out")
    found = assert_runnable(paths)
    assert {e["value"] for e in found["node-server"]["env"] if e["name"] == "HOST"} == {"0.0.0.0"}
