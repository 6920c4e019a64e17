"""The supervisor's log pipeline: JSON lines on disk through a writer thread, secrets redacted,
and records of an owner turn handed to the writer only when the turn ends."""

import io
import json

import pytest

from harness import wait_until
from unified_system import logsetup


def test_records_of_a_held_block_reach_the_file_when_it_ends_redacted(tmp_path):
    logsetup.configure(tmp_path, "INFO", "json", stream=io.StringIO())
    try:
        log = logsetup.get_logger()
        path = tmp_path / "supervisor.log"
        with logsetup.held():
            log.info("spawned", service="web", api_token="hunter2")
            with logsetup.held():   # nested: released with the outermost block
                log.warning("exited", service="web")
            assert logsetup._queue.qsize() == 0   # nothing woke the writer mid-turn
        lines = wait_until(lambda: path.exists() and len(path.read_text().splitlines()) == 2
                           and path.read_text().splitlines(), 5, "both records written")
        records = [json.loads(line) for line in lines]
        assert [r["event"] for r in records] == ["spawned", "exited"]
        assert records[0]["api_token"] == "***"
        log.info("outside a turn")  # not held: straight to the writer
        wait_until(lambda: "outside a turn" in path.read_text(), 5, "the unheld record")
    finally:
        logsetup.stop()


def test_no_backups_starts_the_file_over_at_max_bytes(tmp_path):
    logsetup.configure(tmp_path, "INFO", "json", max_bytes=2000, backups=0, stream=io.StringIO())
    try:
        log = logsetup.get_logger()
        for i in range(200):
            log.info("line", n=i)
        path = tmp_path / "supervisor.log"
        wait_until(lambda: '"n": 199' in path.read_text(), 5, "the last record")
    finally:
        logsetup.stop()
    assert path.stat().st_size <= 2000 and sorted(p.name for p in tmp_path.iterdir()) == [
        "errors.log", "supervisor.log"]


@pytest.mark.parametrize("value, name, want", [
    ("hunter2", "api_key", "***"),
    (b"hunter2", "DB_PASSWORD", "***"),
    (1234, "pin_token", "***"),
    ("visible", "service", "visible"),
    (None, "api_key", None),                         # nothing to hide
    ({"API_TOKEN": "x", "user": "bob"}, "env", {"API_TOKEN": "***", "user": "bob"}),
    ({"a": {"Secret": "x"}}, "secrets", {"a": {"Secret": "***"}}),  # a dict is walked, not hidden
    ([{"password": "x"}, "y"], "items", [{"password": "***"}, "y"]),
    (({"credential": 1},), "", ({"credential": "***"},)),
])
def test_redact(value, name, want):
    assert logsetup.redact(value, name) == want
    assert logsetup.redact(value, name) == want  # the same answer from the name cache
