"""api/http1.py, the request head parser that replaced http.server's in the control API:
the same limits and answers, each sent the worst input (issue 20)."""

from __future__ import annotations

import io

import pytest

from unified_system.api.http1 import MAX_HEADERS, MAX_LINE, RequestHandler


class Probe(RequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "unified-system"

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.seen: dict | None = None
        super().__init__(None, ("127.0.0.1", 1), None)

    def setup(self) -> None:
        self.rfile = io.BytesIO(self.raw)
        self.wfile = io.BytesIO()

    def do_GET(self) -> None:
        self.seen = {"path": self.path, "headers": self.headers.items(),
                     "length": self.headers.get_all("content-length")}
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    @property
    def answer(self) -> bytes:
        return self.wfile.getvalue()


def status(probe: Probe) -> int:
    """The status line's code; a request not (yet) known to be HTTP/1.x is answered as
    HTTP/0.9 was, with the error page alone (http.server does the same)."""
    if probe.answer.startswith(b"HTTP/"):
        return int(probe.answer.split(b" ", 2)[1])
    return int(probe.answer.split(b"Error code: ", 1)[1].split(b"<", 1)[0])


def test_a_request_with_folded_and_repeated_headers():
    p = Probe(b"GET //x/y HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n"
              b"content-length: 1\r\nContent-Length: 2\r\n\r\n")
    assert status(p) == 200 and not p.close_connection
    assert p.seen == {"path": "/x/y", "headers": [("Host", "a"), ("X-Long", "one two"),
                                                   ("content-length", "1"), ("Content-Length", "2")],
                      "length": ["1", "2"]}
    assert b"\r\nServer: unified-system Python/" in p.answer and b"\r\nDate: " in p.answer


@pytest.mark.parametrize("raw, code", [
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_LINE + b"\r\n\r\n", 431),
    (b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.x\r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"POST /\r\n\r\n", 400),                          # HTTP/0.9 knows only GET
    (b"BREW / HTTP/1.1\r\n\r\n", 501),
])
def test_a_bad_head_is_refused_and_the_connection_closed(raw, code):
    p = Probe(raw)
    assert status(p) == code and p.seen is None and p.close_connection


def test_an_error_page_escapes_what_the_client_sent():
    p = Probe(b"<script>alert(1)</script> / HTTP/1.1\r\n\r\n")
    body = p.answer.split(b"\r\n\r\n", 1)[1]
    assert status(p) == 501 and b"<script>" not in body and b"&lt;script&gt;" in body


def test_connection_close_and_expect_100():
    p = Probe(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
    assert p.answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert p.close_connection


def test_nothing_sent_closes_quietly():
    p = Probe(b"")
    assert p.answer == b"" and p.close_connection


class Stdlib:
    """The same request through http.server's BaseHTTPRequestHandler, for comparison."""

    def __init__(self, raw: bytes) -> None:
        import http.server

        out = io.BytesIO()

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                self.rfile, self.wfile = io.BytesIO(raw), out

            def finish(self) -> None:
                pass

            def handle(self) -> None:
                self.handle_one_request()

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        H(None, ("127.0.0.1", 1), None)
        self.answer = out.getvalue()


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n",
    b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_LINE + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_LINE - 10) + b"\r\n\r\n",
    b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n", b"GET / HTTP/1.x\r\n\r\n", b"GET / HTTP/01.01\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\n\r\n", b"POST /\r\n\r\n", b"GET /\r\n\r\n", b"BREW / HTTP/1.1\r\n\r\n",
    b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n",
    b"\r\n", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
])
def test_the_same_status_as_http_server(raw):
    ours, theirs = Probe(raw), Stdlib(raw)
    if b"HTTP/1.1 " in theirs.answer or b"Error code: " in theirs.answer:
        assert status(ours) == status(theirs)   # type: ignore[arg-type]
        assert ours.answer.count(b"HTTP/1.1 ") == theirs.answer.count(b"HTTP/1.1 ")
    else:   # HTTP/0.9, or nothing: the same bytes
        assert ours.answer == theirs.answer
