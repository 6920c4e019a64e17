"""What goes on the wire for a probe: the target, the request, the verdict on the answer."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from unified_system.probes.checks import ProbeFailed

if TYPE_CHECKING:
    from unified_system.config.schema import Probe


@dataclass(frozen=True)
class Target:
    what: str                       # for messages: "GET http://..." or "tcp host:port"
    family: int
    address: tuple
    request: str | None = None      # the path of an http probe; None for tcp
    host_header: str = ""
    status: int | None = None
    tls: bool = False
    wire: bytes = b""               # the request's bytes, built once
    keep_alive: bool = False        # an http probe's connection may carry its next attempt

    def __post_init__(self) -> None:
        if self.request is not None and not self.wire:
            object.__setattr__(self, "wire", request_for(self))


def target_of(probe: Probe) -> Target:
    if probe.tcp is not None:
        host, port = probe.tcp.host, probe.tcp.port
        return Target(f"tcp {host}:{port}", _family(host), (host, port))
    http = probe.http
    if http is None:
        raise ValueError(f"not a network probe: {probe.kind}")
    parts = urlsplit(http.url)
    tls = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(f"GET {http.url}", _family(host), (host, port), path, parts.netloc,
                  http.status, tls, keep_alive=http.keep_alive and not tls)


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def request_for(target: Target) -> bytes:
    # HTTP/1.1 keeps the connection unless told otherwise: without keep-alive, say close.
    close = "" if target.keep_alive else "Connection: close\r\n"
    return (f"GET {target.request} HTTP/1.1\r\nHost: {target.host_header}\r\n"
            f"User-Agent: unified-system-probe\r\n{close}\r\n").encode()


def judge(target: Target, reply: bytes) -> tuple[bool, str]:
    """Kubernetes semantics: any 2xx/3xx passes, unless an exact status is asked for."""
    line = reply.split(b"\n", 1)[0]
    try:
        code = int(line.split()[1])
    except (IndexError, ValueError):
        return False, f"{target.what}: not an HTTP answer: {line[:80]!r}"
    ok = code == target.status if target.status is not None else 200 <= code < 400
    return ok, f"status {code}" if ok else f"{target.what}: status {code}"


def tls_get(sock: socket.socket, target: Target, timeout: float) -> tuple[bool, str]:
    # Kubernetes' httpGet does not verify certificates either: a probe asks "are you up?",
    # and local services often present self-signed ones.
    import ssl  # https probes only: ssl and OpenSSL are ~5 MB the supervisor otherwise never maps

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock.setblocking(True)
    sock.settimeout(timeout)
    with context.wrap_socket(sock, server_hostname=target.address[0]) as tls:
        tls.sendall(request_for(target))
        reply = tls.recv(4096)
        if not reply:
            raise ProbeFailed("connection closed before an answer")
        return judge(target, reply)
