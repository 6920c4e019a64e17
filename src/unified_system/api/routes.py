"""The HTTP handler: routing, limits, auth and JSON errors for SPEC §6.

Nothing taken from a request becomes a path: a `{name}` segment is only ever used after it
was found among the config's service names, and the log file is built from that name.
"""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from unified_system.api.auth import is_loopback, same
from unified_system.api.http1 import Arrival
from unified_system.api.reply import RequestHandler, Writer
from unified_system.core.events import Command, Refused
from unified_system.core.ports import Facade
from unified_system.logsetup import get_logger, redact

MAX_BODY = 64 * 1024      # a longer one is refused by the front (413) before it is read
MAX_LINES = 10_000
COMMAND_TIMEOUT = 5.0     # the owner answers within one loop turn; longer means it is gone
RELOAD_TIMEOUT = 300.0    # a reload answers once changed services are up or rolled back
SERVICE_ACTIONS = ("start", "stop", "restart")
log = get_logger(component="api")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": message, **extra}
        self.headers: dict[str, str] = {}


# The routing table: path template, route id, methods. docs/openapi.yaml describes each
# entry, and tests/test_contract_openapi.py holds the two to each other both ways.
ROUTES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("/health", "health", ("GET",)),
    ("/metrics", "metrics", ("GET",)),
    ("/api/services", "services", ("GET",)),
    ("/api/reload", "reload", ("POST",)),
    ("/api/events", "events", ("GET",)),
    ("/api/diagnostics", "diagnostics", ("GET",)),
    ("/api/suggestions", "suggestions", ("GET",)),
    ("/api/services/{name}", "service", ("GET",)),
    *((f"/api/services/{{name}}/{action}", f"action:{action}", ("POST",))
      for action in SERVICE_ACTIONS),
    ("/api/services/{name}/heartbeat", "heartbeat", ("POST",)),
    ("/api/services/{name}/logs", "logs", ("GET",)),
    ("/api/services/{name}/history", "history", ("GET",)),
    ("/api/crashes", "crashes", ("GET",)),
    ("/api/crashes/{name}", "crash", ("GET",)),   # {name}: a dump's file name
)
_TEMPLATES = tuple((tuple(path.split("/")[1:]), rid, methods) for path, rid, methods in ROUTES)


def route(parts: list[str]) -> tuple[str, tuple[str, ...], str | None] | None:
    """(route id, allowed methods, service name) for decoded path segments, or None."""
    for template, rid, methods in _TEMPLATES:
        if len(template) == len(parts) and all(t in (p, "{name}") for t, p in zip(template, parts, strict=True)):
            name = parts[template.index("{name}")] if "{name}" in template else None
            return rid, methods, name
    return None


class Plane(Protocol):
    """What a request handler uses of the control plane (api/server.py `ControlPlane`).
    Routes depend on this, not on the server module: server imports routes, never back."""

    owner: Facade     # post, snapshot, health, config: never the Supervisor itself
    api_key: str

    @property
    def scrubber(self) -> Any: ...

    def dispatch(self, h: Handler, rid: str, method: str, name: str | None, query: str,
                 body: bytes) -> int: ...


class Handler(RequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "unified-system"
    timeout = 30.0            # bounds a slow client's reads and writes (slowloris, stuck SSE)
    # Headers and body go out as two writes; with Nagle the body waits for the client's
    # delayed ACK of the headers (~40 ms on Linux).
    disable_nagle_algorithm = True

    def __init__(self, request: socket.socket, client_address: Any, server: Any,
                 arrival: Arrival) -> None:
        """`server` is the ControlPlane; `arrival` the whole request the front read.
        Between requests a kept-alive connection waits on the front's selector, not here."""
        super().__init__(request, client_address, server, arrival)

    def setup(self) -> None:
        self.connection = self.request
        self.connection.settimeout(self.timeout)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wfile = Writer(self.connection, self.wire)

    @property
    def plane(self) -> Plane:
        return self.server  # the ControlPlane, as passed in

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_HEAD(self) -> None:
        self._handle("HEAD")   # answered 405 with headers only

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged once, structured, by _handle

    # ------------------------------------------------------------------ plumbing
    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        status, service = 500, None
        split = urlsplit(self.path)
        try:
            # Split before decoding: an encoded '/' stays inside its segment and matches nothing.
            parts = [unquote(p, errors="strict") for p in split.path.split("/")[1:]]
            if len(parts) > 1 and parts[-1] == "":
                parts.pop()
            found = route(parts)
            if found is None:
                raise ApiError(404, "no such route", path=split.path)
            rid, methods, service = found
            if method not in methods:
                err = ApiError(405, f"{method} not allowed here", allow=list(methods))
                err.headers["Allow"] = ", ".join(methods)
                raise err
            body = self._read_body()
            status = self.plane.dispatch(self, rid, method, service, split.query, body)
        except ApiError as err:
            status = err.status
            if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
                # The body may be unread (an error before _read_body): on a kept-alive
                # connection it would be taken for the next request.
                self.close_connection = True
            self.send_json(err.status, err.body, err.headers)
        except UnicodeDecodeError:
            status = 404
            self.send_json(404, {"error": "no such route"})
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
            status = 499
        except Exception as exc:  # never let one bad request kill the handler thread silently
            log.exception("api request failed", method=method, path=split.path)
            status = 500
            self.send_json(500, {"error": f"internal error: {type(exc).__name__}"})
        finally:
            log.debug("api request", method=method, path=split.path, status=status,
                      service=service, ms=round((time.perf_counter() - started) * 1000, 2),
                      client=self.client_address[0])

    def _read_body(self) -> bytes:
        """The front read it whole and held its limits (one Content-Length, none chunked,
        at most MAX_BODY: api/http1.py `Incoming`)."""
        return self.body

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        # Redacted before encoding: json.dumps escapes `"`, `\\`, control characters and
        # non-ASCII, and a secret containing one would no longer match in the encoded text.
        data = json.dumps(self.plane.scrubber.tree(redact(body)), default=str).encode()
        self.send_bytes(status, data, "application/json", headers)

    def send_bytes(self, status: int, data: bytes, ctype: str,
                   headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # ------------------------------------------------------------------ helpers for routes
    def names_loopback(self) -> bool:
        """Whether the Host the client asked for is a loopback one. A web page whose name
        was rebound to 127.0.0.1 (DNS rebinding) asks for its own name, and must not read."""
        host = self.headers.get("Host")
        if host is None:
            return True  # no browser leaves it out
        name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
        return is_loopback(name)

    def loopback_reader(self) -> bool:
        """An open read needs both: a loopback peer (the socket says so; a header cannot)
        and a loopback Host (a rebound page on the same machine is a loopback peer too)."""
        peer = str(self.client_address[0]) if self.client_address else ""
        if peer.startswith("::ffff:"):
            peer = peer[7:]   # an IPv4 peer on a dual-stack socket
        return is_loopback(peer) and self.names_loopback()

    def require_key(self) -> None:
        if not same(self.headers.get("X-API-Key"), self.plane.api_key):
            raise ApiError(401, "missing or wrong X-API-Key")

    def require_service(self, name: str | None) -> str:
        if name is None or name not in self.plane.owner.config().services:
            raise ApiError(404, "no such service", service=name)
        return name

    def json_body(self, body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise ApiError(422, f"body is not valid JSON: {exc}") from None
        except RecursionError:   # [[[[... within MAX_BODY: the parser's recursion runs out
            raise ApiError(422, "body is nested too deeply") from None
        if not isinstance(value, dict):
            raise ApiError(422, "body must be a JSON object")
        return value


def int_query(query: str, key: str, default: int, low: int, high: int) -> int:
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=False).get(key)
    except ValueError:
        raise ApiError(422, "bad query string") from None
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise ApiError(422, f"{key} must be an integer", got=values[-1][:50]) from None
    if not low <= value <= high:
        raise ApiError(422, f"{key} must be between {low} and {high}", got=value)
    return value


def command(plane: Plane, action: str, service: str | None) -> Any:
    """Post a Command to the owner and wait for its answer, mapping failures to HTTP errors."""
    reply: Future = Future()
    plane.owner.post(Command(action, service, reply=reply))
    try:
        return reply.result(timeout=RELOAD_TIMEOUT if action == "reload" else COMMAND_TIMEOUT)
    except FutureTimeout:
        raise ApiError(503, "the supervisor did not answer (shutting down?)") from None
    except NotImplementedError as exc:
        raise ApiError(501, str(exc) or f"{action} is not implemented") from None
    except KeyError:
        raise ApiError(404, "no such service", service=service) from None
    except Refused as exc:  # a reload in progress, or shutting down: try again later
        raise ApiError(409, str(exc)) from None
    except Exception as exc:
        if action == "reload":   # ConfigErrors (or a file that cannot be read): nothing changed
            errors = getattr(exc, "errors", None) or [exc]
            raise ApiError(422, "the new config is invalid; nothing changed",
                           errors=[str(e) for e in errors]) from None
        raise ApiError(422 if isinstance(exc, ValueError) else 500, str(exc)) from None
