"""probes/framing.py as a table: where an answer ends, and which answers keep their connection."""

import pytest

from unified_system.probes.framing import MAX_BODY, MORE, NO_REUSE, answer_end

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"


@pytest.mark.parametrize("reply,end", [
    (OK, len(OK)),
    (OK[:-1], MORE),
    (OK[:10], MORE),
    (OK + b"HTTP", len(OK)),                      # bytes past the end: the caller closes
    (CHUNKED, len(CHUNKED)),
    (CHUNKED[:-2], MORE),
    (CHUNKED[:-1], MORE),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 27),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", 48),
    (FAILED := b"HTTP/1.1 500 Bad\r\nContent-Length: 0\r\n\r\n", len(FAILED)),
    (b"HTTP/1.1 200 OK\r\ncontent-length:  2 \r\n\r\nok", 42),
    (KEEP := b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", len(KEEP)),
    # closed after the answer
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\nok", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 2\r\n\r\nok", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\n\r\nok", NO_REUSE),                        # close-delimited
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=1\r\nok\r\n0\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTrailer: x\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (MAX_BODY + 1), NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 100, NO_REUSE),
    (b"HTTP/1.1 100 Continue\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nX-Bad : 1\r\nContent-Length: 0\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n", NO_REUSE),
    (b"\x00\xff\r\n\r\n", NO_REUSE),
    (b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 9000, NO_REUSE),       # a head that never ends
])
def test_answer_end(reply, end):
    assert answer_end(reply) == end
    assert answer_end(bytearray(reply)) == end


def test_endless_chunked_body_stops_being_read_past_the_limit():
    body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1000\r\n" + b"y" * 4096 + b"\r\n"
    while answer_end(body) == MORE:
        body += b"1000\r\n" + b"y" * 4096 + b"\r\n"
        assert len(body) < 3 * MAX_BODY
    assert answer_end(body) == NO_REUSE
