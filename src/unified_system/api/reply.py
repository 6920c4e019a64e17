"""The answer to a request that arrived whole (api/http1.py `Arrival`), framed by h11 on
the request's own thread: http.server's response methods (send_response, send_header,
end_headers, wfile.write), so api/routes.py and api/sse.py write as they did."""

from __future__ import annotations

import json
import socket
import sys
import time
from http import HTTPStatus
from typing import Any

import h11

from unified_system.api.http1 import Arrival, phrase


def next_cycle(wire: h11.Connection) -> bool:
    """After an answer: True when the connection may carry another request."""
    if wire.our_state is h11.DONE and wire.their_state is h11.DONE:
        wire.start_next_cycle()
        return True
    return False


class Writer:
    """A handler's wfile: each write goes out whole through h11 (chunked when the
    response has no Content-Length, as an event stream has none)."""

    closed = False

    def __init__(self, sock: socket.socket, wire: h11.Connection) -> None:
        self.sock, self.wire = sock, wire

    def write(self, data: bytes) -> int:
        out = self.wire.send(h11.Data(data=data))
        if out:
            self.sock.sendall(out)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class RequestHandler:
    """One request, arrived whole, answered on its own thread (the front keeps the
    connection between requests). The response methods are http.server's."""

    protocol_version = "HTTP/1.1"
    server_version = "BaseHTTP"
    sys_version = "Python/" + sys.version.split()[0]
    timeout: float | None = None

    def __init__(self, request: Any, client_address: Any, server: Any,
                 arrival: Arrival) -> None:
        self.request, self.client_address, self.server = request, client_address, server
        self.arrival = arrival
        self.command: str = arrival.method
        self.path = arrival.target
        if self.path.startswith("//"):   # gh-87389: never an absolute URI without a scheme
            self.path = "/" + self.path.lstrip("/")
        self.request_version = "HTTP/" + arrival.version
        self.headers = arrival.headers
        self.body = arrival.body
        self.wire = arrival.wire
        self.close_connection = arrival.version != "1.1" or str(
            arrival.headers.get("Connection", "")).lower() == "close"
        self._status: tuple[int, str] | None = None
        self._headers: list[tuple[str, str]] = []
        self.keep_alive = False
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    # -- to be provided by the subclass ------------------------------------------------
    wfile: Any

    def setup(self) -> None:
        raise NotImplementedError

    def handle(self) -> None:
        method = getattr(self, "do_" + self.command, None)
        if method is None:
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, "unsupported method")
            return
        try:
            method()
        except TimeoutError:   # a write timed out: discard this connection
            self.close_connection = True

    def finish(self) -> None:
        """End the response (for a stream, its last chunk) and say whether to keep going."""
        try:
            if self.wire.our_state is h11.SEND_BODY:
                out = self.wire.send(h11.EndOfMessage())
                if out:
                    self.request.sendall(out)
        except (OSError, h11.LocalProtocolError):
            self.close_connection = True
        self.keep_alive = not self.close_connection and next_cycle(self.wire)

    # -- the response ----------------------------------------------------------------
    def send_error(self, code: int, message: str | None = None) -> None:
        body = json.dumps({"error": message or phrase(code)}).encode()
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = (int(code), phrase(int(code)) if message is None else message)
        self._headers = []
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self._status = (int(code), phrase(int(code)) if message is None else message)
        self._headers = []

    def send_header(self, keyword: str, value: str) -> None:
        self._headers.append((keyword, value))
        if keyword.lower() == "connection" and value.lower() == "close":
            self.close_connection = True

    def end_headers(self) -> None:
        assert self._status is not None, "send_response first"
        code, reason = self._status
        # h11 refuses a header value with CR or LF in it: no response splitting
        out = self.wire.send(h11.Response(status_code=code, headers=self._headers,
                                          reason=reason.encode("latin-1", "replace")))
        self._status, self._headers = None, []
        if out:
            self.request.sendall(out)

    def version_string(self) -> str:
        return f"{self.server_version} {self.sys_version}"

    @staticmethod
    def date_time_string(timestamp: float | None = None) -> str:
        """RFC 7231 IMF-fixdate, as email.utils.formatdate(usegmt=True) writes it."""
        t = time.gmtime(time.time() if timestamp is None else timestamp)
        days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
        return (f"{days[t.tm_wday]}, {t.tm_mday:02d} {months[t.tm_mon - 1]} {t.tm_year} "
                f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")
