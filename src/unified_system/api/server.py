"""The control plane: the SPEC §6 HTTP API on supervisor.host:port, plus the observers
(SSE hub, suggestion history, webhook alerts) that subscribe to the owner's events.

It reads only the published snapshot and talks to the owner only through `post()` (the
owner's `Facade`, core/ports.py); what it needs of the world (the state and log
directories, the heartbeat tokens, the metric hooks) comes from the adapter as a `World`.
A failure here (the port is taken) is logged and supervision carries on without an API.
"""

from __future__ import annotations

import resource
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

from unified_system import logsetup
from unified_system.api import crashes, routes
from unified_system.api.alerts import Alerts
from unified_system.api.auth import Scrubber, load_or_create_key, same
from unified_system.api.diagnostics import diagnostics
from unified_system.api.front import REQUEST_QUEUE_SIZE, Front, limits_for
from unified_system.api.history import HistoryStore, empty_columns, since_query
from unified_system.api.http1 import Arrival
from unified_system.api.live import with_live
from unified_system.api.metrics import CONTENT_TYPE
from unified_system.api.routes import ApiError, Handler, command, int_query
from unified_system.api.sse import EventHub, frame
from unified_system.api.suggestions import History, suggest
from unified_system.core.events import Command
from unified_system.core.ports import Facade
from unified_system.core.snapshot import overall
from unified_system.logsetup import get_logger
from unified_system.proc.logfile import tail

SSE_SNDBUF = 32 * 1024    # a stuck subscriber holds at most this much kernel memory
MAX_STREAMS = 32          # event streams at once; each holds a thread for as long as it lasts


class World(Protocol):
    """What the control plane reads of the adapter (runtime.py `Runtime`)."""

    state_dir: Path
    log_dir: Path

    @property
    def tokens(self) -> Mapping[str, str]: ...     # service -> heartbeat token

    @property
    def environ(self) -> Mapping[str, str]: ...    # its own environment (secrets to redact)

    @property
    def metrics(self) -> Any: ...   # api/metrics.py `Metrics` once open_api() made it

    @property
    def secrets(self) -> Any: ...   # core/secretstore.py `SecretStore`


class ControlPlane:
    def __init__(self, owner: Facade, world: World) -> None:
        self.owner, self.world = owner, world
        cfg = owner.config().supervisor
        self.host, self.port = cfg.host, cfg.port
        self.api_key: str = cfg.api_key or load_or_create_key(world.state_dir)
        self._scrubber = self._rescrub()
        self.hub = EventHub(lambda data: self.scrubber.tree(data))
        self.history = History()
        self.alerts = Alerts(cfg.notify.webhooks, cfg.notify.events, scrub=self.scrub)
        self.metrics = world.metrics
        # SPEC §6: reads need the key unless supervisor.open_reads lets loopback peers in.
        self.open_reads: bool = cfg.open_reads
        self.front: Front | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.log = get_logger(component="api")
        self.histories = HistoryStore(cfg.history.period, cfg.history.keep,
                                      owner.snapshot, self.metrics.live.figures,
                                      lambda: self.metrics.last_probe, self.hub.on_event,
                                      lambda: self.hub.count > 0)
        self._listeners = [self._guarded(f) for f in
                           (self.hub.on_event, self.history.on_event, self.alerts.on_event)]

    @property
    def scrubber(self) -> Scrubber:
        """Rebuilt after a reload: new services bring new env secrets and tokens."""
        if self.owner.config() is not self._scrubbed_config:
            self._scrubber = self._rescrub()
        return self._scrubber

    def _rescrub(self) -> Scrubber:
        """The secrets of the config now running, for API answers and for the log."""
        self._scrubbed_config = self.owner.config()
        # secret_values reads .runtime, .loaded and .config, as the adapter's hide_secrets
        view = SimpleNamespace(runtime=self.world, loaded=self.owner.loaded(),
                               config=self._scrubbed_config)
        scrubber = Scrubber.for_supervisor(view, self.api_key)
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
        self.owner.listeners.extend(self._listeners)
        self.alerts.start()
        self.histories.start()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            self._listener = socket.create_server((self.host, self.port), family=family,
                                                  backlog=REQUEST_QUEUE_SIZE)
        except OSError as exc:
            self.log.error("control API cannot listen; supervising without it",
                           host=self.host, port=self.port, error=exc.strerror or str(exc))
            return
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if nofile == resource.RLIM_INFINITY:
            nofile = 1 << 20
        self.front = Front(self._listener, self._answer, limits_for(nofile, MAX_STREAMS),
                           routes.MAX_BODY, self.log)
        self._thread = threading.Thread(target=self.front.run, name="api", daemon=True)
        self._thread.start()
        self.log.info("control API listening", host=self.host, port=self.port,
                      max_connections=self.front.limits.connections)

    def _answer(self, sock: socket.socket, address: Any, arrival: Arrival) -> bool:
        """One request, on its own thread (the front's): keep the connection or not."""
        handler = Handler(sock, address, self, arrival)
        return handler.keep_alive and not self._closing

    def close(self) -> None:
        self._closing = True
        for listener in self._listeners:
            if listener in self.owner.listeners:
                self.owner.listeners.remove(listener)
        self.histories.close()
        self.hub.close()
        if self.front is not None:
            self.front.close()
            if self._thread is not None:
                self._thread.join(2.0)
        if self._listener is not None:
            self._listener.close()
        self.alerts.close()
        self.metrics.live.close()   # the held /proc files

    def forget(self, name: str) -> None:
        """Owner thread: a reload removed the service; its history and dedup stamps go."""
        self.history.forget(name)
        self.alerts.forget(name)
        self.metrics.live.peak_rss.pop(name, None)

    # ------------------------------------------------------------------ reading
    def services(self) -> list[dict[str, Any]]:
        snapshot = self.owner.snapshot()
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
            health = self.owner.health() or overall(self.owner.snapshot())
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
            log = self.world.log_dir / f"{service}.log"   # service is a config name
            h.send_json(200, {"service": service,
                              "lines": [self.scrubber.text(ln) for ln in tail(log, lines)]})
            return 200
        if rid == "history":
            service = h.require_service(name)
            ring = self.histories.ring(service)
            h.send_json(200, {"service": service, "period": self.histories.period,
                              "keep": self.histories.keep,
                              **(ring.columns(since_query(query)) if ring else empty_columns())})
            return 200
        if rid == "diagnostics":
            extra = {"control_plane": {
                "history": {"services": len(self.histories.rings),
                            "bytes": self.histories.nbytes},
                "sse_subscribers": self.hub.count, "sse_dropped": self.hub.dropped_total,
                "connections": self._front_figures(),
                "alerts": {"sent": self.alerts.sent, "failed": self.alerts.failed,
                           "dropped": self.alerts.dropped,
                           "deduplicated": self.alerts.deduplicated}}}
            h.send_json(200, diagnostics(self.world.state_dir, extra))
            return 200
        if rid == "suggestions":
            rules = suggest(self.history, self.owner.snapshot(), self.owner.config().services,
                            self.world.log_dir, self.metrics.live.peak_rss,
                            self.scrubber.text)
            h.send_json(200, {"suggestions": rules})
            return 200
        if rid == "crashes":
            dumps = crashes.listing(self.world.state_dir / "crashes")
            h.send_json(200, {"crashes": dumps})
            return 200
        if rid == "crash":
            dump = crashes.read(self.world.state_dir / "crashes", name or "")
            if dump is None:
                raise ApiError(404, "no such crash dump", file=name)
            h.send_json(200, dump)   # send_json scrubs it with the running secrets
            return 200
        if rid == "events":
            self._events(h)
            return 200
        raise ApiError(404, "no such route")

    def _front_figures(self) -> dict[str, Any]:
        front = self.front
        if front is None:
            return {}
        return {"open": front.connections, "busy": front.busy, "refused": front.refused,
                "evicted": front.evicted,
                "timed_out": front.timed_out, "accept_pauses": front.accept_pauses,
                "max_connections": front.limits.connections, "max_busy": front.limits.busy,
                "max_event_streams": MAX_STREAMS}

    def _heartbeat(self, h: Handler, service: str) -> int:
        token = h.headers.get("X-Unified-Token")
        if not token:
            raise ApiError(401, "missing X-Unified-Token")
        if not same(token, self.world.tokens.get(service, "")):
            raise ApiError(403, "this token is not the service's heartbeat token")
        self.owner.post(Command("heartbeat", service))   # no reply needed: fire and forget
        h.send_json(202, {"service": service})
        return 202

    def _events(self, h: Handler) -> None:
        # Subscribe before reading the snapshot, so no event falls between the two.
        sub = self.hub.subscribe_within(h.connection, MAX_STREAMS)
        if sub is None:
            err = ApiError(503, "too many event streams", limit=MAX_STREAMS)
            err.headers["Retry-After"] = str(self.front.limits.retry_after if self.front else 2)
            raise err
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
