"""Helpers shared by the exporters: names, secret detection, ports a service answers on."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from unified_system.config.schema import Probe, Service
from unified_system.logsetup import SECRET_NAME


class ExportError(Exception):
    """The config uses something the target cannot express; the message says what."""


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""})
_DNS_BAD = re.compile(r"[^a-z0-9-]+")


def is_secret(name: str) -> bool:
    """Names the API and logs redact (SPEC §6) are never written out as values either."""
    return bool(SECRET_NAME.search(name))


def dns1123(name: str, max_len: int = 63) -> str:
    """A service name as a DNS-1123 label: lowercase, '_' and '.' become '-'."""
    label = _DNS_BAD.sub("-", name.lower().replace("_", "-").replace(".", "-"))
    label = re.sub(r"-{2,}", "-", label)[:max_len].strip("-")
    if not label:
        raise ExportError(f"service name {name!r} has no letter or digit to build a "
                          f"DNS-1123 name from")
    return label


def project_name(base_dir: Path) -> str:
    """The project directory's name, for unit descriptions and labels."""
    return base_dir.resolve().name or "unified-system"


def probe_port(probe: Probe | None) -> int | None:
    """The local port an http/tcp probe checks (None for exec/notify or a remote host)."""
    if probe is None:
        return None
    if probe.http is not None:
        parts = urlsplit(probe.http.url)
        if (parts.hostname or "") not in LOOPBACK:
            return None
        return parts.port or (443 if parts.scheme == "https" else 80)
    if probe.tcp is not None and probe.tcp.host in LOOPBACK:
        return probe.tcp.port
    return None


def service_ports(spec: Service) -> list[tuple[int, str | None]]:
    """(port, name) a service answers on: its `listen` sockets, then its probe ports.

    Probe ports are not claims in the supervisor (SPEC §2), but a probe on a local port is
    the best evidence of where the service listens when it binds the socket itself.
    """
    seen: dict[int, str | None] = {}
    for sock in spec.listen:
        seen.setdefault(sock.port, sock.name)
    for probe in (spec.readiness, spec.startup, spec.liveness):
        port = probe_port(probe)
        if port is not None:
            seen.setdefault(port, None)
    return list(seen.items())
