"""HTTP/1.1 for the control API, parsed and framed by h11 (python-hyper/h11).

The front (api/front.py) feeds each connection's bytes to an `Incoming` on its selector
thread; what it pulls is either nothing yet, a `Refusal` it answers itself (no thread is
spent on a bad head), or a whole `Arrival` (head and body) that a `RequestHandler` answers
on a thread of its own, writing its response through the same h11 connection
(api/reply.py). h11 does the
grammar, the body framing and keep-alive; this module adds the limits h11 leaves to its
user: the head's size, its number of lines, one Content-Length, no bare LF, no chunked body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import h11

MAX_LINE = 65536     # a longer request line is 414, a longer head 431 (http.client's _MAXLINE)
MAX_HEADERS = 100    # lines after the request line, the blank one included (http.client's)
MAX_HEAD = MAX_LINE  # h11's max_incomplete_event_size; checked again on a whole head
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:", re.IGNORECASE | re.MULTILINE)


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


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


@dataclass(frozen=True)
class Refusal:
    """A request the front answers itself and then closes (lingering)."""

    status: int
    message: str
    limit: int | None = None   # the limit it broke, in the answer's body


@dataclass(frozen=True)
class Arrival:
    """A whole request, to be answered on a thread through `wire`."""

    method: str
    target: str
    version: str          # "1.0" or "1.1"
    headers: Headers
    body: bytes
    wire: h11.Connection


def head_fault(raw: bytes) -> Refusal | None:
    """The limits h11 does not hold, checked on the unparsed bytes of a whole head (h11's
    max_incomplete_event_size only counts a head that has not yet ended, so one that came
    in a single read could be larger)."""
    end = _HEAD_END.search(raw)
    head = raw[:end.end()] if end else raw
    first = head.find(b"\n")
    if first < 0 or first > MAX_LINE:
        return Refusal(414, "request line too long")
    if len(head) > MAX_HEAD:
        return Refusal(431, "request head too large")
    if head.count(b"\n") - 1 > MAX_HEADERS:
        return Refusal(431, "too many headers")
    if head.count(b"\n") != head.count(b"\r\n"):
        # RFC 9112 §2.2 allows a bare LF, but a proxy in front that does not would see
        # another request in the same bytes (smuggling): refuse it
        return Refusal(400, "bare LF in the request head; lines end with CRLF")
    if len(_CONTENT_LENGTH.findall(head)) > 1:
        # h11 merges equal ones; which one a proxy in front believed is anyone's guess
        return Refusal(400, "bad Content-Length: more than one")
    return None


class Incoming:
    """One connection's requests, parsed by h11 as their bytes arrive (the front's thread)."""

    def __init__(self) -> None:
        self.wire = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._request: h11.Request | None = None
        self._body = bytearray()
        # The unparsed head's bytes, for head_fault: kept as they come, since copying h11's
        # buffer at each read of a head sent a byte at a time costs O(n) a byte. None from
        # a request's end until the next cycle starts (then taken from h11's leftover).
        self._head: bytearray | None = bytearray()
        self.continue_due = False   # the client waits for 100 Continue before its body

    def feed(self, data: bytes) -> None:
        self.wire.receive_data(data)
        if self._head is not None and self._request is None and len(self._head) <= 2 * MAX_HEAD:
            self._head += data

    @property
    def partial(self) -> bool:
        """Part of a request has come (so a deadline answers 408, not a silent close)."""
        return self._request is not None or bool(self.wire.trailing_data[0])

    def pull(self, max_body: int) -> Arrival | Refusal | None:
        """The next whole request, a reason to refuse it, or None while it is incomplete."""
        try:
            return self._pull(max_body)
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:
                return head_fault(self.wire.trailing_data[0]) or Refusal(431, "request head too large")
            return Refusal(exc.error_status_hint, str(exc)[:200])

    def _pull(self, max_body: int) -> Arrival | Refusal | None:
        while True:
            if self._head is None and self.wire.their_state is h11.IDLE:   # a new cycle
                self._head = bytearray(self.wire.trailing_data[0])
            event = self.wire.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if self._request is None and self._head and len(self._head) > MAX_HEAD:
                    return head_fault(bytes(self._head)) or Refusal(431, "request head too large")
                return None
            if isinstance(event, h11.Request):
                refusal = head_fault(bytes(self._head or b"")) or self._refusal(event, max_body)
                self._head = bytearray()
                if refusal is not None:
                    return refusal
                self._request = event
                self.continue_due = self.wire.they_are_waiting_for_100_continue
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                request, self._request, self._head = self._request, None, None
                body, self._body = bytes(self._body), bytearray()
                assert request is not None   # h11 gives EndOfMessage only after a Request
                items = [(k.decode("latin-1"), v.decode("latin-1"))
                         for k, v in request.headers.raw_items()]
                return Arrival(request.method.decode("ascii"), request.target.decode("latin-1"),
                               request.http_version.decode("ascii"), Headers(items), body,
                               self.wire)
            else:   # ConnectionClosed: the client went away mid-request
                return Refusal(400, "the connection closed before the request was whole")

    @staticmethod
    def _refusal(request: h11.Request, max_body: int) -> Refusal | None:
        if request.http_version >= b"2":
            return Refusal(505, f"HTTP/{request.http_version.decode()} is not supported")
        if request.method.decode("ascii", "replace") not in METHODS:
            return Refusal(501, "unsupported method")
        names = {name for name, _ in request.headers}
        if b"transfer-encoding" in names:   # h11 lets chunked win over a Content-Length
            return Refusal(411, "chunked bodies are not supported; send Content-Length")
        for name, value in request.headers:
            if name == b"content-length" and int(value) > max_body:
                return Refusal(413, f"body over {max_body} bytes", max_body)
        return None
