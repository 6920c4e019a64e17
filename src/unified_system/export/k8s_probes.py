"""Probe and dependency mapping for `export kubernetes`.

SPEC probes already follow Kubernetes semantics (startup gates liveness, readiness only
gates traffic), so most keys map one to one; what does not map comes back as a note.
"""

from __future__ import annotations

import math
import shlex
from typing import Any
from urllib.parse import urlsplit

from unified_system.config.schema import Dependency, Probe, Service
from unified_system.export.common import LOOPBACK, ExportError, probe_port, service_ports

WAIT_IMAGE = "busybox:1.36"
WAIT_PERIOD_SEC = 2


def _timing(probe: Probe, kind: str) -> dict[str, int]:
    # Kubernetes wants whole seconds (>= 1 except the initial delay): round up, so a probe
    # never becomes stricter than the config asked for.
    return {
        "initialDelaySeconds": math.ceil(probe.initial_delay),
        "periodSeconds": max(1, math.ceil(probe.period)),
        "timeoutSeconds": max(1, math.ceil(probe.timeout)),
        "failureThreshold": probe.failure_threshold,
        # the API server rejects anything but 1 for liveness and startup probes
        "successThreshold": probe.success_threshold if kind == "readiness" else 1,
    }


def _http_action(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    action: dict[str, Any] = {
        "path": (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        "port": parts.port or (443 if parts.scheme == "https" else 80),
    }
    if parts.scheme == "https":
        action["scheme"] = "HTTPS"
    if (parts.hostname or "") not in LOOPBACK:  # loopback means "this pod": the kubelet's default
        action["host"] = parts.hostname
    return {"httpGet": action}


def map_probe(probe: Probe | None, kind: str, spec: Service) -> tuple[dict | None, list[str]]:
    """(Kubernetes probe or None, notes) for one of readiness / startup / liveness."""
    if probe is None:
        return None, []
    notes: list[str] = []
    if probe.http is not None:
        action = _http_action(probe.http.url)
        status = probe.http.status
        if status is not None and not 200 <= status < 400:
            notes.append(f"{kind}: expected status {status} cannot be expressed; "
                         f"httpGet accepts 200-399")
    elif probe.tcp is not None:
        action = {"tcpSocket": {"port": probe.tcp.port}}
        if probe.tcp.host not in LOOPBACK:
            action["tcpSocket"]["host"] = probe.tcp.host
    elif probe.exec is not None:
        action = {"exec": {"command": list(probe.exec.command)}}
    else:  # notify: READY=1 over NOTIFY_SOCKET has no Kubernetes counterpart
        ports = service_ports(spec)
        if not ports:
            return None, [f"{kind}: notify (READY=1) has no Kubernetes equivalent and the "
                          f"service has no known port; no {kind} probe"]
        action = {"tcpSocket": {"port": ports[0][0]}}
        notes.append(f"{kind}: notify (READY=1) has no Kubernetes equivalent; "
                     f"tcpSocket on port {ports[0][0]} instead")
    return {**action, **_timing(probe, kind)}, notes


def wait_container(service: str, dep: str, dep_host: str, dep_spec: Service,
                   needs: Dependency, image: str = WAIT_IMAGE) -> tuple[dict | None, list[str]]:
    """An initContainer that holds the pod until `dep`'s Service answers (depends_on)."""
    if needs.condition == "completed":
        raise ExportError(f"service {service!r} depends on {dep!r} with condition "
                          f"'completed': a one-shot dependency has no Deployment "
                          f"equivalent (make it a Job or an initContainer by hand)")
    notes = [f"depends_on.{dep}.restart: not mapped"] if needs.restart else []
    ready = dep_spec.readiness
    if needs.condition == "healthy" and ready is not None and ready.http is not None \
            and probe_port(ready) is not None:
        action = _http_action(ready.http.url)["httpGet"]
        scheme = "https" if action.get("scheme") == "HTTPS" else "http"
        url = f"{scheme}://{dep_host}:{action['port']}{action['path']}"
        check = ["wget", "-q", "-T", "2", "-O", "/dev/null", url]
    else:
        port = probe_port(ready) or next((p for p, _ in service_ports(dep_spec)), None)
        if port is None:
            return None, notes + [f"depends_on.{dep}: {dep!r} has no known port to wait "
                                  f"for; no initContainer"]
        if needs.condition == "healthy" and (ready is None or ready.http is None):
            notes.append(f"depends_on.{dep}: 'healthy' approximated by port {port} "
                         f"accepting connections")
        check = ["nc", "-z", "-w", "2", dep_host, str(port)]
    script = (f"until {shlex.join(check)}; do echo 'waiting for {dep_host}'; "
              f"sleep {WAIT_PERIOD_SEC}; done")
    container = {"name": f"wait-{dep_host}"[:63].rstrip("-"), "image": image,
                 "command": ["sh", "-c", script]}
    return container, notes
