"""What the control API's Handler took from http.server.BaseHTTPRequestHandler: the request
line and headers parsed with its limits and answers (400, 414, 431, 501, 505, 100-continue,
Connection), and the response written as it writes it.

http.server imports http.client, which imports email's parser and ssl: ~3 MB resident in
the supervisor (bench/RESULTS.md "Footprint") for a header parser of a few lines. The front
(api/front.py) has already read the head whole; this reads it from there.
"""

from __future__ import annotations

import sys
import time
from http import HTTPStatus
from typing import Any

MAX_LINE = 65536     # http.client's _MAXLINE: a longer line is refused (431, or 414 for the first)
MAX_HEADERS = 100    # http.client's _MAXHEADERS

_RESPONSES = {s.value: (s.phrase, s.description) for s in HTTPStatus}
_ERROR_PAGE = """<!DOCTYPE HTML>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <title>Error response</title>
    </head>
    <body>
        <h1>Error response</h1>
        <p>Error code: %(code)d</p>
        <p>Message: %(message)s.</p>
        <p>Error code explanation: %(code)s - %(explain)s.</p>
    </body>
</html>
"""


def _escape(text: str) -> str:
    """html.escape(text, quote=False) without `html`, whose entity table (~0.45 MB) would
    stay resident for the rare error page."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Headers:
    """A request's headers: names match case-insensitively; `get` gives the first value."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def get(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        for key, value in self._items:
            if key.lower() == name:
                return value
        return default

    def get_all(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        found = [value for key, value in self._items if key.lower() == name]
        return found or default

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        return [key for key, _ in self._items]


class _HeadError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_headers(rfile: Any) -> Headers:
    """Header lines up to the blank line, as http.client.parse_headers reads them (a folded
    line continues the previous value)."""
    items: list[tuple[str, str]] = []
    lines = 0
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise _HeadError("Line too long")
        lines += 1
        if lines > MAX_HEADERS:   # the blank line counts, as http.client counts it
            raise _HeadError("Too many headers")
        if line in (b"\r\n", b"\n", b""):
            return Headers(items)
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and items:   # obsolete line folding
            key, value = items[-1]
            items[-1] = (key, f"{value} {text.strip()}")
            continue
        key, colon, value = text.partition(":")
        if colon and key and key == key.strip():
            items.append((key, value.strip(" \t")))
        # a line without a name is dropped, as the email parser drops it from the headers


class RequestHandler:
    """One request on one connection (the front keeps the connection between requests)."""

    protocol_version = "HTTP/1.0"
    server_version = "BaseHTTP"
    sys_version = "Python/" + sys.version.split()[0]
    default_request_version = "HTTP/0.9"
    error_content_type = "text/html;charset=utf-8"
    timeout: float | None = None
    responses = _RESPONSES

    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        self.request, self.client_address, self.server = request, client_address, server
        self.command: str | None = None
        self.path = ""
        self.request_version = self.default_request_version
        self.headers = Headers([])
        self.close_connection = True
        self._headers_buffer: list[bytes] = []
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    # -- to be provided by the subclass (rfile, wfile) ---------------------------------
    rfile: Any
    wfile: Any

    def setup(self) -> None:
        raise NotImplementedError

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def finish(self) -> None:
        try:
            self.wfile.flush()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        self.log_message(format, *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    # -- the request -----------------------------------------------------------------
    def handle_one_request(self) -> None:
        try:
            raw = self.rfile.readline(MAX_LINE + 1)
            if len(raw) > MAX_LINE:
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not raw:
                self.close_connection = True
                return
            if not self.parse_request(raw):
                return
            method = getattr(self, "do_" + str(self.command), None)
            if method is None:
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
                return
            method()
            self.wfile.flush()
        except TimeoutError:   # a read or a write timed out: discard this connection
            self.close_connection = True

    def parse_request(self, raw: bytes) -> bool:
        self.command = None
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = raw.decode("iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                parts = version.split("/", 1)[1].split(".")
                if len(parts) != 2 or not all(p.isdigit() and len(p) <= 10 for p in parts):
                    raise ValueError
                number = int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if number >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
            if number >= (2, 0):
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                                f"Invalid HTTP version ({version.split('/', 1)[1]})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):   # gh-87389: never an absolute URI without a scheme
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = read_headers(self.rfile)
        except _HeadError as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, err.message)
            return False
        conntype = str(self.headers.get("Connection", "")).lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = str(self.headers.get("Expect", "")).lower()
        if (expect == "100-continue" and self.protocol_version >= "HTTP/1.1"
                and self.request_version >= "HTTP/1.1"):
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()
        return True

    # -- the response ----------------------------------------------------------------
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        short, long = self.responses.get(int(code), ("???", "???"))
        message = short if message is None else message
        explain = long if explain is None else explain
        self.log_error("code %d, message %s", code, message)
        self.send_response(code, message)
        self.send_header("Connection", "close")
        body = None
        if code >= 200 and code not in (HTTPStatus.NO_CONTENT, HTTPStatus.RESET_CONTENT,
                                        HTTPStatus.NOT_MODIFIED):
            body = (_ERROR_PAGE % {"code": code, "message": _escape(message),
                                   "explain": _escape(explain)}
                    ).encode("utf-8", "replace")
            self.send_header("Content-Type", self.error_content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())

    def send_response_only(self, code: int, message: str | None = None) -> None:
        if self.request_version != "HTTP/0.9":
            if message is None:
                message = self.responses.get(int(code), ("",))[0]
            self._headers_buffer.append(
                f"{self.protocol_version} {int(code)} {message}\r\n".encode("latin-1", "strict"))

    def send_header(self, keyword: str, value: str) -> None:
        if self.request_version != "HTTP/0.9":
            self._headers_buffer.append(f"{keyword}: {value}\r\n".encode("latin-1", "strict"))
        if keyword.lower() == "connection":
            if value.lower() == "close":
                self.close_connection = True
            elif value.lower() == "keep-alive":
                self.close_connection = False

    def end_headers(self) -> None:
        if self.request_version != "HTTP/0.9":
            self._headers_buffer.append(b"\r\n")
            self.flush_headers()

    def flush_headers(self) -> None:
        if self._headers_buffer:
            self.wfile.write(b"".join(self._headers_buffer))
            self._headers_buffer = []

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
