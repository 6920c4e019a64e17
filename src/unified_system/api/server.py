"""The control plane: the SPEC §6 HTTP API on supervisor.host:port, plus the observers
(SSE hub, suggestion history, webhook alerts) that subscribe to the owner's events.

It reads only the published snapshot and talks to the owner only through `post()`; a
failure here (the port is taken) is logged and supervision carries on without an API.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from unified_system import logsetup
from unified_system.api import crashes, routes
from unified_system.api.alerts import Alerts
from unified_system.api.auth import Scrubber, load_or_create_key, same
from unified_system.api.diagnostics import diagnostics
from unified_system.api.live import with_live
from unified_system.api.metrics import CONTENT_TYPE
from unified_system.api.routes import ApiError, Handler, command, int_query
from unified_system.api.sse import EventHub, frame
from unified_system.api.suggestions import History, suggest
from unified_system.core.events import Command
from unified_system.core.snapshot import overall
from unified_system.logsetup import get_logger
from unified_system.proc.logfile import tail

SSE_SNDBUF = 32 * 1024    # a stuck subscriber holds at most this much kernel memory


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    plane: ControlPlane

    def __init__(self, address: tuple[str, int], plane: ControlPlane) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.plane = plane
        super().__init__(address, Handler)


class ControlPlane:
    def __init__(self, sup: Any) -> None:
        self.sup = sup
        cfg = sup.config.supervisor
        self.host, self.port = cfg.host, cfg.port
        self.api_key: str = cfg.api_key or load_or_create_key(sup.runtime.state_dir)
        self._scrubber = self._rescrub()
        self.hub = EventHub(lambda data: self.scrubber.tree(data))
        self.history = History()
        self.alerts = Alerts(cfg.notify.webhooks, cfg.notify.events, scrub=self.scrub)
        self.metrics = sup.runtime.metrics
        # SPEC §6: reads need the key unless supervisor.open_reads lets loopback peers in.
        self.open_reads: bool = cfg.open_reads
        self.server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.log = get_logger(component="api")
        self._listeners = [self._guarded(f) for f in
                           (self.hub.on_event, self.history.on_event, self.alerts.on_event)]

    @property
    def scrubber(self) -> Scrubber:
        """Rebuilt after a reload: new services bring new env secrets and tokens."""
        if self.sup.config is not self._scrubbed_config:
            self._scrubber = self._rescrub()
        return self._scrubber

    def _rescrub(self) -> Scrubber:
        """The secrets of the config now running, for API answers and for the log."""
        self._scrubbed_config = self.sup.config
        scrubber = Scrubber.for_supervisor(self.sup, self.api_key)
        logsetup.hide_values(scrubber.values)
        return scrubber

    def scrub(self, text: str) -> str:
        return self.scrubber.text(text)

    def _guarded(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """Listeners run on the owner thread: an observer's bug must never take it down."""
        def call(event: dict[str, Any]) -> None:
            try:
                listener(event)
            except Exception:
                self.log.exception("control-plane listener failed", type=event.get("type"),
                                   service=event.get("service"))
        return call

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.sup.listeners.extend(self._listeners)
        self.alerts.start()
        try:
            self.server = _Server((self.host, self.port), self)
        except OSError as exc:
            self.log.error("control API cannot listen; supervising without it",
                           host=self.host, port=self.port, error=exc.strerror or str(exc))
            return
        self._thread = threading.Thread(target=self._serve, name="api", daemon=True)
        self._thread.start()
        self.log.info("control API listening", host=self.host, port=self.port)

    def _serve(self) -> None:
        # Blocking accept() instead of serve_forever()'s 0.5 s poll: no idle wake-ups, and
        # close() wakes it at once by shutting the listening socket down.
        server = self.server
        assert server is not None
        while not self._closing:
            try:
                request, address = server.get_request()
            except OSError:
                continue
            try:
                server.process_request(request, address)
            except Exception:
                server.handle_error(request, address)
                server.shutdown_request(request)

    def close(self) -> None:
        self._closing = True
        for listener in self._listeners:
            if listener in self.sup.listeners:
                self.sup.listeners.remove(listener)
        self.hub.close()
        if self.server is not None:
            try:
                self.server.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            if self._thread is not None:
                self._thread.join(2.0)
            self.server.server_close()
        self.alerts.close()

    # ------------------------------------------------------------------ reading
    def services(self) -> list[dict[str, Any]]:
        snapshot = self.sup.snapshot
        return with_live(snapshot, self.metrics.live.figures(snapshot))

    def service(self, name: str) -> dict[str, Any]:
        for obj in self.services():
            if obj["name"] == name:
                return obj
        raise ApiError(404, "no such service", service=name)

    # ------------------------------------------------------------------ routes
    def dispatch(self, h: Handler, rid: str, method: str, name: str | None, query: str,
                 body: bytes) -> int:
        if rid == "heartbeat":
            return self._heartbeat(h, h.require_service(name))
        if method != "GET":
            h.require_key()
        elif rid not in ("health", "metrics") and not (self.open_reads and h.loopback_reader()):
            h.require_key()
        if rid == "health":
            health = self.sup.health or overall(self.sup.snapshot)
            status = 503 if health.get("status") == "unhealthy" else 200
            h.send_json(status, health)
            return status
        if rid == "metrics":
            h.send_bytes(200, self.metrics.exposition(), CONTENT_TYPE)
            return 200
        if rid == "services":
            h.send_json(200, self.services())
            return 200
        if rid == "service":
            h.send_json(200, self.service(h.require_service(name)))
            return 200
        if rid.startswith("action:"):
            service = h.require_service(name)
            h.json_body(body)
            action = rid.split(":", 1)[1]
            command(self, action, service)
            self.log.info("api command", action=action, service=service)
            h.send_json(202, self.service(service))
            return 202
        if rid == "reload":
            h.json_body(body)
            result = command(self, "reload", None)
            h.send_json(200, result)
            return 200
        if rid == "logs":
            service = h.require_service(name)
            lines = int_query(query, "lines", 100, 0, routes.MAX_LINES)
            log = self.sup.runtime.log_dir / f"{service}.log"   # service is a config name
            h.send_json(200, {"service": service,
                              "lines": [self.scrubber.text(ln) for ln in tail(log, lines)]})
            return 200
        if rid == "diagnostics":
            extra = {"control_plane": {
                "sse_subscribers": self.hub.count, "sse_dropped": self.hub.dropped_total,
                "alerts": {"sent": self.alerts.sent, "failed": self.alerts.failed,
                           "dropped": self.alerts.dropped,
                           "deduplicated": self.alerts.deduplicated}}}
            h.send_json(200, diagnostics(self.sup.runtime.state_dir, extra))
            return 200
        if rid == "suggestions":
            rules = suggest(self.history, self.sup.snapshot, self.sup.config.services,
                            self.sup.runtime.log_dir, self.metrics.live.peak_rss,
                            self.scrubber.text)
            h.send_json(200, {"suggestions": rules})
            return 200
        if rid == "crashes":
            dumps = crashes.listing(self.sup.runtime.state_dir / "crashes")
            h.send_json(200, {"crashes": dumps})
            return 200
        if rid == "crash":
            dump = crashes.read(self.sup.runtime.state_dir / "crashes", name or "")
            if dump is None:
                raise ApiError(404, "no such crash dump", file=name)
            h.send_json(200, dump)   # send_json scrubs it with the running secrets
            return 200
        if rid == "events":
            self._events(h)
            return 200
        raise ApiError(404, "no such route")

    def _heartbeat(self, h: Handler, service: str) -> int:
        token = h.headers.get("X-Unified-Token")
        if not token:
            raise ApiError(401, "missing X-Unified-Token")
        if not same(token, self.sup.runtime.tokens.get(service, "")):
            raise ApiError(403, "this token is not the service's heartbeat token")
        self.sup.post(Command("heartbeat", service))   # no reply needed: fire and forget
        h.send_json(202, {"service": service})
        return 202

    def _events(self, h: Handler) -> None:
        # Subscribe before reading the snapshot, so no event falls between the two.
        sub = self.hub.subscribe(h.connection)
        first = frame("snapshot", self.scrubber.tree({"services": self.services()}))
        h.close_connection = True
        try:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SSE_SNDBUF)
        except OSError:
            pass
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("X-Accel-Buffering", "no")
        h.send_header("Connection", "close")
        h.end_headers()
        self.hub.stream(sub, first, h.wfile.write)
