"""api/http1.py: the control API's requests as h11 parses them, with the limits this project
adds on top (issue 20's footprint, then h11 instead of a parser by hand). Pure: bytes in,
a whole request, a refusal or "not yet" out; each limit is sent its worst input."""

from __future__ import annotations

import pytest

from unified_system.api.admission import canned, limits_for
from unified_system.api.http1 import MAX_HEADERS, MAX_LINE, Arrival, Incoming, Refusal, head_fault

MAX_BODY = 64 * 1024
HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
POST4 = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"


def pulled(*pieces: bytes) -> Arrival | Refusal | None:
    """What the front would pull after each piece came in its own read."""
    incoming = Incoming()
    got = incoming.pull(MAX_BODY)
    for piece in pieces:
        if piece:   # b"" would be the end of the stream
            incoming.feed(piece)
        got = incoming.pull(MAX_BODY)
        if got is not None:
            return got
    return got


def status(got: Arrival | Refusal | None) -> int | str | None:
    return got.status if isinstance(got, Refusal) else ("whole" if got else None)


@pytest.mark.parametrize("raw, expected", [
    (b"", None),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n", None),                 # head not ended
    (HEAD, "whole"),
    (POST4 + b"ab", None),                                          # body not yet whole
    (POST4 + b"abcd", "whole"),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                               # HTTP/1.1 needs a Host
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),                                        # no HTTP/0.9
    (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"<script>alert(1)</script> / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX :a\r\n\r\n", 400),            # space before the colon
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400),         # a bare CR in a value
    (b"GET / HTTP/1.0\n\n", 400),                                   # bare LF: smuggling
    (b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),              # one bare LF among CRLFs
    # smuggling: Transfer-Encoding with Content-Length, two Content-Lengths, an odd coding
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", 411),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n", 411),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 2\r\n\r\nabcd", 400),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 2\r\n\r\nabcd", 400),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 400),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % 10**30, 400),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
])
def test_a_request_is_whole_refused_or_awaited(raw, expected):
    assert status(pulled(raw)) == expected


@pytest.mark.parametrize("raw, expected", [
    (HEAD[:-2] + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n", 431),
    (HEAD[:-2] + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS - 2)) + b"\r\n", "whole"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: v\r\n" * 10_000 + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * MAX_LINE + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (1 << 20) + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (MAX_LINE - 100) + b"\r\n\r\n", "whole"),
    (b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /" + b"a" * (1 << 20), 414),                             # a request line without end
])
@pytest.mark.parametrize("read", [1 << 16, 1 << 22], ids=["in-reads-of-64k", "in-one-read"])
def test_the_head_limits_hold_however_the_bytes_come(raw, expected, read):
    # h11's own limit counts only a head not yet ended; one read of 4 MiB ends it at once
    assert status(pulled(*(raw[i:i + read] for i in range(0, len(raw), read)))) == expected


def test_a_whole_request_keeps_its_headers_as_sent():
    got = pulled(b"POST //x/y HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n"
                 b"content-length: 2\r\n\r\nhi")
    assert isinstance(got, Arrival)
    assert (got.method, got.target, got.version, got.body) == ("POST", "//x/y", "1.1", b"hi")
    assert got.headers.items() == [("Host", "a"), ("X-Long", "one two"), ("content-length", "2")]
    assert got.headers.get("CONTENT-LENGTH") == "2" and "host" in got.headers


def test_pipelined_requests_come_one_at_a_time():
    incoming = Incoming()
    incoming.feed(HEAD + POST4 + b"abcd" + b"GET /next HTTP/1.1\r\nHost: x\r\n")
    first = incoming.pull(MAX_BODY)
    assert isinstance(first, Arrival) and first.target == "/health"
    assert incoming.pull(MAX_BODY) is None   # h11 waits: the first is not answered yet
    _answer(first)
    second = incoming.pull(MAX_BODY)
    assert isinstance(second, Arrival) and second.body == b"abcd"
    _answer(second)
    assert incoming.pull(MAX_BODY) is None and incoming.partial   # the third's head has begun


def _answer(arrival: Arrival) -> None:
    import h11

    from unified_system.api.reply import next_cycle

    arrival.wire.send(h11.Response(status_code=204, headers=[]))
    arrival.wire.send(h11.EndOfMessage())
    assert next_cycle(arrival.wire)


def test_expect_100_continue_is_due_once_the_head_passes():
    incoming = Incoming()
    incoming.feed(b"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert incoming.pull(MAX_BODY) is None and incoming.continue_due


def test_a_client_that_closes_mid_request_is_refused():
    incoming = Incoming()
    incoming.feed(POST4 + b"ab")
    assert incoming.pull(MAX_BODY) is None
    incoming.feed(b"")
    assert status(incoming.pull(MAX_BODY)) == 400


def test_head_fault_on_a_plain_head_is_none():
    assert head_fault(HEAD) is None


@pytest.mark.parametrize("nofile,connections", [(16, 64), (256, 128), (1024, 512), (20000, 1024),
                                                (1 << 20, 1024)])
def test_connections_take_half_the_descriptors_within_bounds(nofile, connections):
    limits = limits_for(nofile, 32)
    assert (limits.connections, limits.busy) == (connections, 48)


def test_a_canned_answer_says_when_to_come_back_and_which_limit():
    data = canned(503, "Service Unavailable", "busy", 2)
    assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nRetry-After: 2\r\n" in data and data.endswith(b'{"error": "busy"}')
    assert canned(413, "", "too big", limit=5).endswith(b'{"error": "too big", "limit": 5}')
    assert canned(413, "", "x").startswith(b"HTTP/1.1 413 Content Too Large\r\n") or \
        canned(413, "", "x").startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
