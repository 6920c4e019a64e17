"""Where a probe's HTTP answer ends, so its connection can carry the next probe (keep-alive).

The verdict is the status line's alone (wire.judge); this only decides whether the socket
may be kept. Anything unusual answers "not reusable", and the connection is closed: a
close-delimited body, HTTP/1.0, `Connection: close`, two different Content-Lengths, a
Transfer-Encoding other than chunked, chunk trailers, a body over MAX_BODY, or any byte
past the answer's end. Closing costs one fresh connection next time, never a wrong verdict.
"""

from __future__ import annotations

MAX_HEAD = 8192        # an answer's head larger than this is not read further (as before)
MAX_BODY = 65536       # a body kept-alive past: larger ones are not worth reading each period
MORE = 0               # answer_end: the answer is not complete yet
NO_REUSE = -1          # answer_end: close the connection after this answer
_CHUNKED = -2
_HEX = frozenset(b"0123456789abcdefABCDEF")


def answer_end(reply: bytes | bytearray) -> int:
    """The length of the complete answer at the start of `reply`, MORE, or NO_REUSE."""
    head_end = reply.find(b"\r\n\r\n")
    if head_end < 0:
        return NO_REUSE if len(reply) > MAX_HEAD else MORE
    body = head_end + 4
    length = body_length(bytes(reply[:head_end]))
    if length == NO_REUSE:
        return NO_REUSE
    if length == _CHUNKED:
        end = chunked_end(reply, body)
        return end if end <= 0 else body + end
    if len(reply) < body + length:
        return MORE
    return body + length


def body_length(head: bytes) -> int:
    """The body's length by the head's framing, _CHUNKED, or NO_REUSE."""
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    if len(status) < 2 or status[0] != b"HTTP/1.1" or len(status[1]) != 3 or not status[1].isdigit():
        return NO_REUSE
    code = int(status[1])
    if code < 200:   # an interim answer: we never send Expect, so this is not a real server
        return NO_REUSE
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():   # garbage, or a space before the colon
            return NO_REUSE
        name, value = name.lower(), value.strip()
        if name == b"connection":
            if b"close" in (token.strip().lower() for token in value.split(b",")):
                return NO_REUSE
        elif name == b"content-length":
            if not value.isdigit() or len(value) > 18 or (length is not None and int(value) != length):
                return NO_REUSE
            length = int(value)
        elif name == b"transfer-encoding":
            if value.lower() != b"chunked" or chunked:
                return NO_REUSE
            chunked = True
    if chunked and length is not None:   # both: the classic smuggling shape (RFC 9112 §6.3)
        return NO_REUSE
    if code in (204, 304):
        return 0
    if chunked:
        return _CHUNKED
    if length is None or length > MAX_BODY:   # close-delimited, or too big to read each period
        return NO_REUSE
    return length


def chunked_end(reply: bytes | bytearray, start: int) -> int:
    """The length of a complete chunked body at reply[start:], MORE, or NO_REUSE."""
    pos = start
    while True:
        if pos - start > MAX_BODY:
            return NO_REUSE
        eol = reply.find(b"\r\n", pos, pos + 64)
        if eol < 0:
            return MORE if len(reply) - pos < 64 else NO_REUSE
        size_text = reply[pos:eol]
        if not size_text or len(size_text) > 8 or not _HEX.issuperset(size_text):
            return NO_REUSE   # chunk extensions too: a probe endpoint has no use for them
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:   # the last chunk; trailers are not kept alive
            if len(reply) < pos + 2:
                return MORE
            return pos + 2 - start if reply[pos:pos + 2] == b"\r\n" else NO_REUSE
        if size > MAX_BODY:
            return NO_REUSE
        if len(reply) < pos + size + 2:
            return MORE
        if reply[pos + size:pos + size + 2] != b"\r\n":
            return NO_REUSE
        pos += size + 2
