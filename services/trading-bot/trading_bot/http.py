"""The bot's small HTTP face: ``GET /health`` and ``GET /status`` (stdlib server)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def make_server(host: str, port: int, snapshot: Callable[[], dict[str, Any]],
                inherited: socket.socket | None = None) -> ThreadingHTTPServer:
    """Bind (or adopt an inherited listening socket) and route to ``snapshot()``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "trading-bot"

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
            path = self.path.split("?", 1)[0]
            if path == "/health":
                snap = snapshot()
                self._send(200, {"status": "ok", "service": "trading-bot",
                                 "mode": snap["mode"], "tick": snap["tick"]})
            elif path == "/status":
                self._send(200, snapshot())
            else:
                self._send(404, {"detail": f"no route {path}"})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # probes hit /health every second; keep the service log for trading

    if inherited is None:
        return ThreadingHTTPServer((host, port), Handler)
    server = ThreadingHTTPServer(inherited.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = inherited  # already bound and listening: the supervisor did it
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
