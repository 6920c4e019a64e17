"""A NATS broker among the services, in `export kubernetes` (issue 18, item 6).

The broker's ports are in its argv (`--port`, `--http_port`, `--cluster`), not in `listen`,
and only the monitoring port shows in its probes: so the client port is read from the flags,
which lets every client's `NATS_URL=nats://127.0.0.1:4222` become `nats://nats:4222`. Its
loopback `--addr` binds 0.0.0.0 in a pod. The result is one JetStream server with its store
on the checkpoint volume; for a replicated cluster the note names the official NATS Helm
chart, whose Service keeps the same name and port, so the clients need no change.
"""

from __future__ import annotations

import re

ANY = "0.0.0.0"
CLIENT_PORT = 4222      # nats-server's defaults, when the flag is absent
HELM = ("one JetStream server (replicas: 1; its store on the checkpoint volume: use a "
        "PersistentVolumeClaim). For a 3-node cluster use the official NATS Helm chart "
        "instead of this Deployment: helm repo add nats https://nats-io.github.io/k8s/helm/charts/ "
        "&& helm install nats nats/nats --set config.jetstream.enabled=true "
        "--set config.cluster.enabled=true --set config.cluster.replicas=3, and set "
        "NATS_REPLICAS=3 for the clients (docs/deploy.md)")
_ADDR_FLAGS = frozenset({"-a", "--addr", "--net"})
_PORT_FLAGS = {"-p": "client", "--port": "client", "-m": "monitor", "--http_port": "monitor"}
_LOOPBACK = re.compile(r"^(127\.0\.0\.1|localhost|::1)$")


def is_nats(argv: list[str]) -> bool:
    """nats-server itself, or a launcher of it given JetStream's flag (services/nats)."""
    names = {arg.rsplit("/", 1)[-1] for arg in argv}
    return "nats-server" in names or bool({"-js", "--jetstream"} & set(argv))


def _value(argv: list[str], i: int) -> tuple[str, str, int]:
    """(flag, value, how many args it took) at argv[i]: `--port 4222` or `--port=4222`."""
    flag, eq, glued = argv[i].partition("=")
    if eq:
        return flag, glued, 1
    return flag, argv[i + 1] if i + 1 < len(argv) else "", 2


def nats_ports(argv: list[str]) -> list[tuple[int, str]]:
    """(port, name): the client port (default 4222) and, when given, the monitoring port."""
    found: dict[str, int] = {}
    for i in range(len(argv)):
        flag, value, _ = _value(argv, i)
        if flag in _PORT_FLAGS and value.isdigit():
            found.setdefault(_PORT_FLAGS[flag], int(value))
    found.setdefault("client", CLIENT_PORT)
    return [(port, name) for name, port in found.items()]


def nats_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(argv with a loopback `--addr` bound to 0.0.0.0, notes)."""
    out: list[str] = []
    notes: list[str] = []
    i = 0
    while i < len(argv):
        flag, value, took = _value(argv, i)
        if flag in _ADDR_FLAGS and _LOOPBACK.match(value):
            out += [f"{flag}={ANY}"] if took == 1 else [flag, ANY]
            notes.append(f"args rewritten for a pod: {flag} {value} -> {flag} {ANY}")
            i += took
            continue
        out.append(argv[i])
        i += 1
    return out, notes + [f"nats: {HELM}"]
