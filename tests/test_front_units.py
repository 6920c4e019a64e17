"""Pure parts of the API's front door and of the spawn back-off, tested by tables."""

import errno

import pytest

from unified_system.api.front import canned, limits_for, request_end
from unified_system.core.policy import scarce
from unified_system.proc.seam import SpawnError

HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


POST4 = b"POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\n"
ODD = b"POST /a HTTP/1.1\r\ncontent-length:  4 \r\n\r\n"
BAD = b"POST /a HTTP/1.1\r\nContent-Length: x\r\n\r\n"
NEGATIVE = b"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n"
HUGE = b"POST /a HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"
TWICE = b"POST /a HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 2\r\n\r\n"
CHUNKED = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("buf,end", [
    (b"", None),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n", None),          # head not ended
    (HEAD, len(HEAD)),
    (HEAD + b"GET /next", len(HEAD)),                       # pipelined: only the first
    (b"GET / HTTP/1.0\n\n", 16),                            # bare LF, as http.server allows
    (POST4 + b"ab", None),                                  # body not yet whole
    (POST4 + b"abcd", len(POST4) + 4),
    (ODD + b"abcdEXTRA", len(ODD) + 4),
    (BAD, len(BAD)),                                        # the handler answers 400
    (NEGATIVE, len(NEGATIVE)),                              # ... 400
    (HUGE, len(HUGE)),                                      # ... 413, without the body
    (CHUNKED + b"5\r\n", len(CHUNKED)),                      # ... 411
    (TWICE + b"abcd", len(TWICE)),                          # ... 400
])
def test_request_end(buf, end):
    assert request_end(buf, 64 * 1024) == end


@pytest.mark.parametrize("nofile,connections", [(16, 64), (256, 128), (1024, 512), (20000, 1024),
                                                (1 << 20, 1024)])
def test_connections_take_half_the_descriptors_within_bounds(nofile, connections):
    limits = limits_for(nofile, 32)
    assert (limits.connections, limits.busy) == (connections, 48)


def test_a_canned_answer_says_when_to_come_back():
    data = canned(503, "Service Unavailable", "busy", 2)
    assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nRetry-After: 2\r\n" in data and data.endswith(b'{"error": "busy"}')


def _wrapped(err: int) -> SpawnError:
    try:
        try:
            raise OSError(err, "x")
        except OSError as exc:
            raise SpawnError("cannot execute") from exc
    except SpawnError as outer:
        try:
            raise SpawnError(str(outer)) from outer   # runtime.spawn wraps the seam's again
        except SpawnError as twice:
            return twice


@pytest.mark.parametrize("err,transient", [
    (errno.EMFILE, True), (errno.ENFILE, True), (errno.EAGAIN, True), (errno.ENOMEM, True),
    (errno.ENOENT, False), (errno.EACCES, False), (errno.ENOEXEC, False), (errno.ENOTDIR, False),
])
def test_only_scarce_resources_make_a_spawn_failure_transient(err, transient):
    assert scarce(OSError(err, "x")) is transient
    assert scarce(_wrapped(err)) is transient


def test_a_spawn_error_of_its_own_is_not_transient():
    assert not scarce(SpawnError("build command 'x' not found"))
