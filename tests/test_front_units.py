"""Pure parts of the spawn back-off, tested by tables."""

import errno

import pytest

from unified_system.core.policy import scarce
from unified_system.proc.seam import SpawnError

# The front's request_end table became api/http1.py's Incoming table (tests/test_http1.py),
# with its limits and canned answers, once h11 parsed the requests.


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
