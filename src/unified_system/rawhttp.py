"""A minimal HTTP/1.1 client on a raw socket, for the CLI's exchanges with our own control API.

http.client costs a client command ~35 ms to import (it loads the `email` package to parse
headers) and h11 ~30 ms; this needs only `socket`. It speaks just what the control API
answers: a status line, headers, and a body by Content-Length, chunked, or up to the close.
Every answer is bounded in size and in time (one deadline per request, not per read), so a
peer that sends garbage or chunks without end gets a clear error, never a hung client.
"""

from __future__ import annotations

import socket
import time

TYPE_CHECKING = False   # typing costs a client ~15 ms to import; mypy knows this name
if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_HEAD = 65536             # status line and headers together
MAX_BODY = 64 * 1024 * 1024  # a status of 10,000 services is a few MB


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.1 we can read (or is too large)."""


class Closed(ConnectionError):
    """The peer closed before the first byte of an answer (a kept-alive connection it ended)."""


class Answer:
    __slots__ = ("status", "headers", "body", "will_close")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, will_close: bool) -> None:
        self.status, self.headers, self.body, self.will_close = status, headers, body, will_close


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """socket.create_connection, given the host as bytes: for a str, getaddrinfo loads the
    idna codec (~5 ms)."""
    where = host.encode("ascii") if host.isascii() else host
    error: OSError | None = None
    for family, kind, proto, _name, address in socket.getaddrinfo(where, port, 0,
                                                                  socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"cannot resolve {host}")


class Connection:
    """One keep-alive connection; `request` returns a whole answer or raises OSError
    (refused, reset, TimeoutError) or ProtocolError."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self._buf = b""
        self._deadline = 0.0

    def request(self, method: str, target: str, headers: Mapping[str, str],
                timeout: float) -> Answer:
        self._deadline = time.monotonic() + timeout
        if self.sock is None:
            self.sock = _connect(self.host, self.port, timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buf = b""
        host = f"[{self.host}]" if ":" in self.host else self.host
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{self.port}",
                 "Accept: application/json", "Content-Length: 0"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        self.sock.settimeout(self._left())
        self.sock.sendall(head)
        return self._answer(method)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._buf = b""

    # ---------------------------------------------------------------- reading
    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete answer from {self.host}:{self.port} in time")
        return left

    def _fill(self) -> bool:
        assert self.sock is not None
        self.sock.settimeout(self._left())
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(f"no complete answer from {self.host}:{self.port} in time") from None
        self._buf += data
        return bool(data)

    def _line(self, limit: int) -> bytes:
        while (end := self._buf.find(b"\n")) < 0:
            if len(self._buf) > limit:
                raise ProtocolError("header line too long")
            if not self._fill():
                raise ProtocolError("connection closed mid-answer")
        line, self._buf = self._buf[:end + 1], self._buf[end + 1:]
        return line.rstrip(b"\r\n")

    def _answer(self, method: str) -> Answer:
        if not self._buf and not self._fill():
            raise Closed("connection closed before an answer")
        first = self._line(MAX_HEAD)
        parts = first.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() \
                or len(parts[1]) != 3:
            raise ProtocolError(f"not an HTTP/1.1 status line: {first[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        size = len(first)
        while line := self._line(MAX_HEAD - size):
            size += len(line) + 2
            if size > MAX_HEAD:
                raise ProtocolError("answer head too large")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise ProtocolError(f"malformed header line: {line[:80]!r}")
            headers[name.lower()] = value.strip()
        if 100 <= status < 200:
            return self._answer(method)   # an interim answer: the real one follows
        will_close = headers.get("connection", "").lower() == "close" \
            or parts[0] == b"HTTP/1.0"
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit() or len(length) > 12 or int(length) > MAX_BODY:
                raise ProtocolError(f"bad Content-Length: {length[:40]!r}")
            body = self._exactly(int(length))
        else:
            body, will_close = self._to_close(), True
        return Answer(status, headers, body, will_close)

    def _exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed mid-body")
        body, self._buf = self._buf[:n], self._buf[n:]
        return body

    def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self._line(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size: {size_line[:40]!r}") from None
            if size < 0 or total + size > MAX_BODY:
                raise ProtocolError("chunked body too large")
            if size == 0:
                while self._line(MAX_HEAD):   # trailers, then the blank line
                    pass
                return b"".join(chunks)
            chunks.append(self._exactly(size))
            total += size
            if self._line(2):
                raise ProtocolError("chunk not followed by CRLF")

    def _to_close(self) -> bytes:
        while self._fill():
            if len(self._buf) > MAX_BODY:
                raise ProtocolError("body too large")
        body, self._buf = self._buf, b""
        return body
