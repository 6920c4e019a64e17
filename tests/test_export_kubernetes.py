"""`export kubernetes`: manifests validated against the API schemas (kubernetes-validate,
strict, offline), then checked for what each config key became."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from kubernetes_validate import utils as kv

from unified_system.config import load_config
from unified_system.export import ExportError, run_export
from unified_system.export.kubernetes import memory_quantity

K8S_VERSION = "1.30.0"
API_KEY = "s3cr3t-api-key-0451"
DB_PASSWORD = "hunter2-db-password"

CONFIG = """
services:
  db:
    command: ["python", "-m", "http.server", "5432"]
    cwd: services/db
    env: {DB_PASSWORD: "${DB_PASSWORD}"}
    readiness: {tcp: {port: 5432}, period: 250ms, timeout: 1.5s, start_interval: 50ms}
    stop: {timeout: 30s}
  api:
    command: ["python", "-m", "api", "--api-key", "${API_KEY}"]
    cwd: services/api
    env:
      API_KEY: "${API_KEY}"
      DATABASE_URL: "postgres://app@127.0.0.1:5432/app"
      MOTTO: "costs $$(whoami)"
    depends_on: {db: {condition: healthy}}
    readiness:
      http: {url: "http://127.0.0.1:8080/health?deep=1"}
      initial_delay: 2s
      period: 3s
      failure_threshold: 4
      success_threshold: 2
    startup: {exec: {command: ["python", "-c", "print(1)"]}, period: 500ms, failure_threshold: 60}
    liveness: {tcp: {port: 8080}, success_threshold: 1}
    limits: {max_memory: 512MiB}
    instances: 3
    checkpoint: {keep: 2}
    heartbeat: {timeout: 10s}
  worker_v2.beta:
    command: python -m worker
    depends_on: {api: {condition: healthy}, db: {}}
    listen: [{port: 9100, name: metrics_http}]
    readiness: {notify: true}
    limits: {max_memory: 256MB}
"""


def project(root: Path, text: str = CONFIG, env_name: str | None = None, **environ: str):
    for sub in ("services/db", "services/api"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    path = root / "services.yaml"
    path.write_text(textwrap.dedent(text))
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "API_KEY": API_KEY, "DB_PASSWORD": DB_PASSWORD, **environ}
    return load_config(path, env_name=env_name, environ=env)


@pytest.fixture
def exported(tmp_path):
    """{file name: [documents]} as written to disk, and the raw text of every file."""
    files = run_export("kubernetes", project(tmp_path / "proj"), tmp_path / "out",
                       image="registry.example/app:1.2")
    assert all(f.parent == tmp_path / "out" for f in files)
    texts = {f.name: f.read_text() for f in files}
    return {name: list(yaml.safe_load_all(text)) for name, text in texts.items()}, texts


def find(docs, kind: str, name: str) -> dict:
    for file_docs in docs.values():
        for doc in file_docs:
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name}")


def container(docs, name: str) -> dict:
    return find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def test_every_document_is_valid_against_the_kubernetes_schema(exported):
    docs, _ = exported
    assert set(docs) == {"db.yaml", "api.yaml", "worker-v2-beta.yaml", "secrets.example.yaml"}
    count = 0
    for file_docs in docs.values():
        for doc in file_docs:
            kv.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError
            count += 1
    assert count == 3 + 3 + 2  # a Deployment and a Service each, two Secrets


def test_the_validator_rejects_a_broken_manifest(exported):
    # the check above means something only if a wrong field fails it
    docs, _ = exported
    broken = find(docs, "Deployment", "api")
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, K8S_VERSION, strict=True)


def test_secret_values_appear_nowhere(exported):
    docs, texts = exported
    for text in texts.values():
        assert API_KEY not in text and DB_PASSWORD not in text
    env = {e["name"]: e for e in container(docs, "api")["env"]}
    assert env["API_KEY"] == {"name": "API_KEY", "valueFrom": {"secretKeyRef": {
        "name": "api-secrets", "key": "API_KEY"}}}
    assert container(docs, "api")["args"] == ["-m", "api", "--api-key", "$(API_KEY)"]
    example = {d["metadata"]["name"]: d for d in docs["secrets.example.yaml"]}
    assert example["api-secrets"]["stringData"] == {"API_KEY": ""}
    assert example["db-secrets"]["stringData"] == {"DB_PASSWORD": ""}


@pytest.mark.parametrize("password", [DB_PASSWORD, "correct horse battery staple " * 4])
def test_a_secret_inlined_elsewhere_is_refused(tmp_path, password):
    # the second value is long and spaced: YAML folds it across lines
    text = CONFIG.replace('"postgres://app@127.0.0.1:5432/app"',
                          '"postgres://app:${DB_PASSWORD}@127.0.0.1:5432/app"')
    loaded = project(tmp_path, text, DB_PASSWORD=password)
    with pytest.raises(ExportError, match="DB_PASSWORD"):
        run_export("kubernetes", loaded, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_command_env_and_workdir(exported):
    docs, _ = exported
    api = container(docs, "api")
    assert api["image"] == "registry.example/app:1.2"
    assert api["command"] == ["python"] and api["workingDir"] == "/app/services/api"
    env = {e["name"]: e.get("value") for e in api["env"]}
    assert env["DATABASE_URL"] == "postgres://app@db:5432/app"  # loopback -> the Service
    assert env["MOTTO"] == "costs $$(whoami)"  # no $(VAR) expansion by the kubelet
    assert env["UNIFIED_SERVICE"] == "api"
    assert env["CHECKPOINT_DIR"] and env["CHECKPOINT_KEEP"] == "2"
    assert container(docs, "worker-v2-beta")["workingDir"] == "/app"


def test_probes_are_mapped(exported):
    docs, _ = exported
    api = container(docs, "api")
    assert api["readinessProbe"] == {
        "httpGet": {"path": "/health?deep=1", "port": 8080}, "initialDelaySeconds": 2,
        "periodSeconds": 3, "timeoutSeconds": 1, "failureThreshold": 4, "successThreshold": 2}
    assert api["startupProbe"]["exec"] == {"command": ["python", "-c", "print(1)"]}
    assert api["startupProbe"]["periodSeconds"] == 1  # 500ms rounded up
    assert api["startupProbe"]["failureThreshold"] == 60
    assert api["livenessProbe"]["tcpSocket"] == {"port": 8080}
    assert api["livenessProbe"]["periodSeconds"] == 5
    assert api["livenessProbe"]["successThreshold"] == 1
    db = container(docs, "db")["readinessProbe"]
    assert db["tcpSocket"] == {"port": 5432} and db["timeoutSeconds"] == 2  # 1.5s rounded up
    notes = find(docs, "Deployment", "db")["metadata"]["annotations"]["unified-system.io/notes"]
    assert "readiness.start_interval" in notes


def test_notify_readiness_falls_back_to_a_tcp_probe_with_a_note(exported):
    docs, _ = exported
    worker = container(docs, "worker-v2-beta")
    assert worker["readinessProbe"]["tcpSocket"] == {"port": 9100}
    notes = find(docs, "Deployment", "worker-v2-beta")["metadata"]["annotations"]
    assert "notify (READY=1) has no Kubernetes equivalent" in notes["unified-system.io/notes"]


def test_resources_replicas_grace(exported):
    docs, _ = exported
    assert container(docs, "api")["resources"] == {"limits": {"memory": "512Mi"}}
    assert container(docs, "worker-v2-beta")["resources"] == {"limits": {"memory": "256M"}}
    assert find(docs, "Deployment", "api")["spec"]["replicas"] == 3
    assert find(docs, "Deployment", "db")["spec"]["replicas"] == 1
    pod = find(docs, "Deployment", "db")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30 and pod["enableServiceLinks"] is False


def test_dependencies_become_wait_init_containers(exported):
    docs, _ = exported
    api_init = find(docs, "Deployment", "api")["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in api_init] == ["wait-db"]
    assert "nc -z -w 2 db 5432" in api_init[0]["command"][2]
    worker_init = find(docs, "Deployment", "worker-v2-beta")["spec"]["template"]["spec"]
    by_name = {c["name"]: c["command"][2] for c in worker_init["initContainers"]}
    assert "wget -q -T 2 -O /dev/null 'http://api:8080/health?deep=1'" in by_name["wait-api"]
    assert "nc -z -w 2 db 5432" in by_name["wait-db"]
    assert "initContainers" not in find(docs, "Deployment", "db")["spec"]["template"]["spec"]


def test_service_ports_from_listen_and_probes(exported):
    docs, _ = exported
    ports = find(docs, "Service", "api")["spec"]["ports"]
    assert [(p["port"], p["name"]) for p in ports] == [(8080, "port-8080")]
    worker = find(docs, "Service", "worker-v2-beta")["spec"]
    assert worker["ports"][0]["name"] == "metrics-http" and worker["ports"][0]["port"] == 9100
    assert worker["selector"] == {"app.kubernetes.io/name": "worker-v2-beta"}


def test_unsupported_configs_are_refused(tmp_path):
    completed = CONFIG.replace("depends_on: {db: {condition: healthy}}",
                               "depends_on: {db: {condition: completed}}")
    with pytest.raises(ExportError, match="'completed'"):
        run_export("kubernetes", project(tmp_path / "a", completed), tmp_path / "out")
    clash = CONFIG + "  worker-v2-beta: {command: python}\n"
    with pytest.raises(ExportError, match="both become the Kubernetes name 'worker-v2-beta'"):
        run_export("kubernetes", project(tmp_path / "b", clash), tmp_path / "out")
    (tmp_path / "elsewhere").mkdir()
    outside = CONFIG.replace("cwd: services/db", f"cwd: {tmp_path / 'elsewhere'}")
    with pytest.raises(ExportError, match="outside the project directory"):
        run_export("kubernetes", project(tmp_path / "c", outside), tmp_path / "out")


def test_disabled_services_are_left_out(tmp_path):
    text = CONFIG + "environments:\n  lite: {services: {worker_v2.beta: {enabled: false}}}\n"
    files = run_export("kubernetes", project(tmp_path, text, env_name="lite"))
    assert sorted(f.name for f in files) == ["api.yaml", "db.yaml", "secrets.example.yaml"]
    assert files[0].parent == tmp_path / "deploy" / "kubernetes"


@pytest.mark.parametrize("size, quantity", [(512 * 2**20, "512Mi"), (2 * 2**30, "2Gi"),
                                            (10**9, "1G"), (1500, "1500"), (4096, "4Ki")])
def test_memory_quantity(size, quantity):
    assert memory_quantity(size) == quantity


def test_generated_secrets_and_the_rollout_proof_are_mapped(tmp_path):
    # `secrets:` is one generated value shared by the services naming it: one Secret holds it,
    # each of them reads it by reference; rollout.min_ready/timeout prove a new pod as we do.
    text = """
        services:
          ledger:
            command: ["python", "-m", "http.server", "5432"]
            cwd: services/db
            secrets: [LEDGER_TOKEN]
            rollout: {min_ready: 4.5s, timeout: 90s}
          bot:
            command: ["python", "-m", "http.server", "5433"]
            cwd: services/db
            secrets: [LEDGER_TOKEN, BOT_SEED]
    """
    files = run_export("kubernetes", project(tmp_path / "proj", text), tmp_path / "out")
    docs = {f.name: list(yaml.safe_load_all(f.read_text())) for f in files}
    for file_docs in docs.values():
        for doc in file_docs:
            kv.validate(doc, K8S_VERSION, strict=True)
    shared = find(docs, "Secret", "proj-generated")
    assert shared["stringData"] == {"BOT_SEED": "", "LEDGER_TOKEN": ""}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(docs, "bot")["env"]
            if "valueFrom" in e}
    assert refs == {"LEDGER_TOKEN": {"name": "proj-generated", "key": "LEDGER_TOKEN"},
                    "BOT_SEED": {"name": "proj-generated", "key": "BOT_SEED"}}
    ledger = find(docs, "Deployment", "ledger")["spec"]
    assert (ledger["minReadySeconds"], ledger["progressDeadlineSeconds"]) == (5, 90)
    bot = find(docs, "Deployment", "bot")["spec"]
    assert bot["minReadySeconds"] == 2 and "progressDeadlineSeconds" not in bot
