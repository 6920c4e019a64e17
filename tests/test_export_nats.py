"""`export kubernetes` of the repository's services.yaml maps the `nats` broker (issue 18,
item 6): it binds 0.0.0.0, its client and monitoring ports are declared and served, the
clients' NATS_URL names its Service, and the note names the official NATS Helm chart for a
cluster. Every document passes kubernetes-validate (strict, offline)."""

from __future__ import annotations

import os
import sys

import yaml
from kubernetes_validate import utils as kv

from harness import ROOT
from unified_system.config import load_config
from unified_system.export import run_export
from unified_system.export.k8s_nats import is_nats, nats_args, nats_ports
from unified_system.export.kubernetes import NOTES

K8S_VERSION = "1.30.0"


def exported(tmp_path):
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    loaded = load_config(ROOT / "services.yaml", env_name="production", environ=env)
    files = run_export("kubernetes", loaded, tmp_path / "out")
    return {f.name: list(yaml.safe_load_all(f.read_text())) for f in files}


def test_the_nats_service_is_reachable_from_the_other_pods(tmp_path):
    docs = exported(tmp_path)
    for file_docs in docs.values():
        for doc in file_docs:
            kv.validate(doc, K8S_VERSION, strict=True)
    deployment, service = docs["nats.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--addr") + 1] == "0.0.0.0"
    assert {p["containerPort"]: p["name"] for p in pod["containers"][0]["ports"]} \
        == {4222: "client", 8222: "monitor"}
    assert {p["port"] for p in service["spec"]["ports"]} == {4222, 8222}
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz?js-enabled-only=true"
    assert "helm install nats nats/nats" in deployment["metadata"]["annotations"][NOTES]
    for client in ("backend", "trading-bot", "node-server"):
        env = {e["name"]: e.get("value") for e in
               docs[f"{client}.yaml"][0]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["NATS_URL"] == "nats://nats:4222", (client, env)


def test_nats_flags_table():
    assert is_nats(["/usr/local/bin/nats-server", "-c", "x.conf"])
    assert is_nats(["python", "launch.py", "-js"])
    assert not is_nats(["python", "-m", "backend", "--port", "8000"])
    assert nats_ports(["nats-server"]) == [(4222, "client")]
    assert nats_ports(["nats-server", "-p", "5000", "--http_port=9000"]) \
        == [(5000, "client"), (9000, "monitor")]
    assert nats_args(["nats-server", "-a", "127.0.0.1", "--addr=localhost"])[0] \
        == ["nats-server", "-a", "0.0.0.0", "--addr=0.0.0.0"]
    assert nats_args(["nats-server", "--addr", "10.0.0.5"])[0] == ["nats-server", "--addr", "10.0.0.5"]
