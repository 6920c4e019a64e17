"""`export kubernetes`: a Deployment and a Service per enabled service (SPEC §1, §5).

One container per pod: Kubernetes takes the supervisor's place (restarts, probes,
dependency order by initContainers), so the supervisor itself is not in these manifests.
Pure: LoadedConfig in, {file name: [documents]} out; run_export writes them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from unified_system.config.loader import LoadedConfig
from unified_system.config.schema import Service
from unified_system.export.common import ExportError, dns1123, is_secret, project_name, service_ports
from unified_system.export.k8s_args import rewrite_args, rewrite_host_env
from unified_system.export.k8s_nats import is_nats, nats_args, nats_ports
from unified_system.export.k8s_probes import WAIT_IMAGE, map_probe, wait_container

DEFAULT_IMAGE = "unified-system:latest"
APP_ROOT = "/app"  # where the Dockerfile puts the project
CHECKPOINT_MOUNT = "/var/lib/unified-system/checkpoint"
NOTES = "unified-system.io/notes"
_LOOPBACK_ADDR = re.compile(r"\b(127\.0\.0\.1|localhost):(\d{1,5})\b")
_MI = 1024 * 1024
MIN_SECRET_LEN = 4


def memory_quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, exact: 512MiB -> 512Mi, 512MB -> 512M."""
    for unit, factor in (("Gi", 1024 * _MI), ("Mi", _MI), ("G", 10**9), ("M", 10**6),
                         ("Ki", 1024), ("k", 1000)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _port_name(name: str | None, port: int, used: set[str]) -> str:
    """IANA_SVC_NAME: at most 15 of [a-z0-9-], with a letter; else port-<n>."""
    candidate = ""
    if name:
        try:
            candidate = dns1123(name, 15)
        except ExportError:
            candidate = ""
    if not re.search("[a-z]", candidate) or "--" in candidate or candidate in used:
        candidate = f"port-{port}"
    used.add(candidate)
    return candidate


def _k8s_literal(value: str) -> str:
    # Kubernetes expands $(VAR) in env values, command and args; $$( keeps it literal.
    return value.replace("$(", "$$(")


def generated_secret_name(project: str) -> str:
    return dns1123(f"{project}-generated")


def _env(svc: str, spec: Service, owners: dict[int, str],
         loaded_project: str) -> tuple[list[dict], list[str]]:
    """Container env: secret-named variables as secretKeyRef, never values; loopback
    addresses of another service's port rewritten to that service's DNS name."""
    env: list[dict[str, Any]] = [{"name": "UNIFIED_SERVICE", "value": svc}]
    rewritten: list[str] = []
    for name, value in spec.env.items():
        if is_secret(name):
            env.append({"name": name, "valueFrom": {"secretKeyRef": {
                "name": f"{dns1123(svc)}-secrets", "key": name}}})
            continue

        def to_service(match: re.Match[str]) -> str:
            owner = owners.get(int(match.group(2)))
            return f"{owner}:{match.group(2)}" if owner and owner != dns1123(svc) \
                else match.group(0)

        new = _LOOPBACK_ADDR.sub(to_service, rewrite_host_env(name, value))
        if new != value:
            rewritten.append(name)
        env.append({"name": name, "value": _k8s_literal(new)})
    # a generated secret (SPEC §9) is one value shared by every service that names it
    for name in spec.secrets:
        env.append({"name": name, "valueFrom": {"secretKeyRef": {
            "name": generated_secret_name(loaded_project), "key": name}}})
    if spec.checkpoint is not None and "CHECKPOINT_DIR" not in spec.env:
        env += [{"name": "CHECKPOINT_DIR", "value": CHECKPOINT_MOUNT},
                {"name": "CHECKPOINT_KEEP", "value": str(spec.checkpoint.keep)}]
    notes = [f"env {', '.join(rewritten)}: loopback address rewritten to the Service or 0.0.0.0"] \
        if rewritten else []
    return env, notes


def _argv(spec: Service) -> list[str]:
    """The command, with any secret's value replaced by a $(NAME) reference to its env."""
    # shorter values are no secret worth the name, and replacing them would mangle args
    secrets = {name: value for name, value in spec.env.items()
               if is_secret(name) and len(value) >= MIN_SECRET_LEN}
    argv = []
    for arg in spec.command:
        arg = _k8s_literal(arg)
        for name, value in secrets.items():
            arg = arg.replace(value, f"$({name})")
        argv.append(arg)
    return argv


def _ports(spec: Service) -> list[tuple[int, str | None]]:
    """service_ports(), and a NATS broker's ports from its flags (k8s_nats.py)."""
    ports = dict(nats_ports(list(spec.command))) if is_nats(list(spec.command)) else {}
    named = {port: ports.get(port, name) for port, name in service_ports(spec)}
    return [(port, name) for port, name in ports.items() if port not in named] + list(named.items())


def _workdir(loaded: LoadedConfig, svc: str, spec: Service, app_root: str) -> str:
    base = loaded.base_dir.resolve()
    cwd = Path(spec.cwd).resolve()
    if cwd != base and base not in cwd.parents:
        raise ExportError(f"service {svc!r}: cwd {cwd} is outside the project directory "
                          f"{base}, so it has no place in the image under {app_root}")
    rel = cwd.relative_to(base).as_posix()
    return app_root if rel == "." else f"{app_root}/{rel}"


def _unmapped(spec: Service) -> list[str]:
    notes = []
    for key, what in (("heartbeat", "use the liveness probe"), ("watch", "rebuild the image"),
                      ("build", "run it in the image build"),
                      ("env_file", "put these variables in a ConfigMap or Secret")):
        if getattr(spec, key):
            notes.append(f"{key}: not mapped ({what})")
    if spec.listen:
        notes.append("listen: the process binds its ports itself (no LISTEN_FDS)")
    if spec.readiness is not None and spec.readiness.start_interval is not None:
        notes.append("readiness.start_interval: Kubernetes probes at periodSeconds from the "
                     "start (a startupProbe with a short period comes closest)")
    if spec.restart.policy == "never":
        notes.append("restart.policy never: a Deployment always restarts its containers")
    if spec.stop.signal != "SIGTERM":
        notes.append(f"stop.signal {spec.stop.signal}: the kubelet sends SIGTERM")
    if spec.checkpoint is not None:
        notes.append("checkpoint: an emptyDir survives container restarts, not a move to "
                     "another node; use a PersistentVolumeClaim for durability")
    return notes


def _labels(loaded: LoadedConfig, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": dns1123(project_name(loaded.base_dir)),
            "app.kubernetes.io/managed-by": "unified-system"}


def service_docs(loaded: LoadedConfig, svc: str, hosts: dict[str, str],
                 owners: dict[int, str], image: str, app_root: str,
                 wait_image: str) -> list[dict[str, Any]]:
    """The Deployment and (when the service has ports) the Service of one service."""
    spec = loaded.config.services[svc]
    name = hosts[svc]
    env, notes = _env(svc, spec, owners, project_name(loaded.base_dir))
    argv, notes_args = rewrite_args(svc, spec, _argv(spec))
    notes += notes_args
    if is_nats(argv):
        argv, notes_nats = nats_args(argv)
        notes += notes_nats
    used: set[str] = set()
    ports = [(port, _port_name(pname, port, used)) for port, pname in _ports(spec)]
    container: dict[str, Any] = {
        "name": name, "image": image, "command": argv[:1], "args": argv[1:],
        "workingDir": _workdir(loaded, svc, spec, app_root), "env": env,
    }
    if ports:
        container["ports"] = [{"name": n, "containerPort": p, "protocol": "TCP"}
                              for p, n in ports]
    for kind in ("startup", "readiness", "liveness"):
        probe, more = map_probe(getattr(spec, kind), kind, spec)
        notes += more
        if probe is not None:
            container[f"{kind}Probe"] = probe
    if spec.limits is not None and spec.limits.max_memory is not None:
        container["resources"] = {"limits": {"memory": memory_quantity(spec.limits.max_memory)}}
    pod: dict[str, Any] = {
        # service links would put BACKEND_PORT=tcp://... into every pod's environment,
        # shadowing variables the services read themselves
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": max(1, math.ceil(spec.stop.timeout)),
    }
    waits = []
    for dep, needs in spec.depends_on.items():
        if dep not in hosts:
            raise ExportError(f"service {svc!r} depends on {dep!r}, which is disabled or "
                              f"not defined in this environment")
        wait, more = wait_container(svc, dep, hosts[dep], loaded.config.services[dep],
                                    needs, wait_image)
        notes += more
        if wait is not None:
            waits.append(wait)
    if waits:
        pod["initContainers"] = waits
    pod["containers"] = [container]
    if spec.checkpoint is not None:
        container["volumeMounts"] = [{"name": "checkpoint", "mountPath": CHECKPOINT_MOUNT}]
        pod["volumes"] = [{"name": "checkpoint", "emptyDir": {}}]
    notes += _unmapped(spec)
    labels = _labels(loaded, name)
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if notes:
        meta["annotations"] = {NOTES: "; ".join(notes)}
    docs: list[dict[str, Any]] = [{
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
        # the rollout proof (SPEC §5): ready this long before the old pod goes, within the deadline
        "spec": {"replicas": spec.instances,
                 "minReadySeconds": math.ceil(spec.rollout.min_ready),
                 **({"progressDeadlineSeconds": max(math.ceil(spec.rollout.timeout),
                                                    math.ceil(spec.rollout.min_ready) + 1)}
                    if spec.rollout.timeout is not None else {}),
                 "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                 "template": {"metadata": {"labels": labels}, "spec": pod}},
    }]
    if ports:
        docs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": name, "labels": labels},
                     "spec": {"selector": {"app.kubernetes.io/name": name},
                              "ports": [{"name": n, "port": p, "targetPort": n,
                                         "protocol": "TCP"} for p, n in ports]}})
    return docs


def secret_docs(loaded: LoadedConfig, hosts: dict[str, str]) -> list[dict[str, Any]]:
    """One example Secret per service with secret-named env, and one for the generated
    `secrets:` the services share: keys only, values empty."""
    docs = []
    for svc, host in hosts.items():
        keys = sorted(k for k in loaded.config.services[svc].env if is_secret(k))
        if keys:
            docs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": f"{host}-secrets", "labels": _labels(loaded, host)},
                         "stringData": {k: "" for k in keys}})
    generated = sorted({name for svc in hosts for name in loaded.config.services[svc].secrets})
    if generated:
        project = project_name(loaded.base_dir)
        docs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": generated_secret_name(project),
                                  "labels": {"app.kubernetes.io/part-of": dns1123(project),
                                             "app.kubernetes.io/managed-by": "unified-system"}},
                     "stringData": {k: "" for k in generated}})
    return docs


def manifests(loaded: LoadedConfig, image: str = DEFAULT_IMAGE, app_root: str = APP_ROOT,
              wait_image: str = WAIT_IMAGE) -> dict[str, list[dict[str, Any]]]:
    """{file name: documents}: `<service>.yaml` each, and `secrets.example.yaml`."""
    enabled = loaded.config.enabled()
    if not enabled:
        raise ExportError("no enabled service to export")
    hosts: dict[str, str] = {}
    for svc in enabled:
        host = dns1123(svc)
        clash = next((other for other, h in hosts.items() if h == host), None)
        if clash:
            raise ExportError(f"services {clash!r} and {svc!r} both become the Kubernetes "
                              f"name {host!r}; rename one")
        hosts[svc] = host
    owners: dict[int, str] = {}
    for svc, spec in enabled.items():
        for port, _ in _ports(spec):
            owners.setdefault(port, hosts[svc])
    files = {f"{hosts[svc]}.yaml": service_docs(loaded, svc, hosts, owners, image, app_root,
                                                wait_image) for svc in enabled}
    secrets = secret_docs(loaded, hosts)
    if secrets:
        files["secrets.example.yaml"] = secrets
    return files


def leaked_secrets(loaded: LoadedConfig, text: str) -> list[str]:
    """Names of secret-named variables whose value appears in `text` (must be none)."""
    found = set()
    for spec in loaded.config.enabled().values():
        for name, value in spec.env.items():
            if is_secret(name) and len(value) >= MIN_SECRET_LEN and value in text:
                found.add(name)
    return sorted(found)
