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


def read_or_empty(path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def logged_lines(tmp_path, count: int, backups: int):
    """`count` records through a log set up with max_bytes 2000 and `backups`, all written."""
    logsetup.configure(tmp_path, "INFO", "json", max_bytes=2000, backups=backups, stream=io.StringIO())
    try:
        log = logsetup.get_logger()
        for i in range(count):
            log.info("line", n=i)
        path = tmp_path / "supervisor.log"
        # Rotation renames the file away for a moment: absent is "not yet".
        wait_until(lambda: path.exists() and f'"n": {count - 1}' in read_or_empty(path), 10,
                   "the last record")
    finally:
        logsetup.stop()
    return path


def test_log_files_rotate_to_backups_at_max_bytes(tmp_path):
    logged_lines(tmp_path, 300, backups=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["errors.log", "supervisor.log", "supervisor.log.1", "supervisor.log.2"]
    for name in names[1:]:
        assert (tmp_path / name).stat().st_size <= 2000
    kept = [json.loads(line)["n"] for name in reversed(names[1:])
            for line in (tmp_path / name).read_text().splitlines()]
    assert kept == list(range(kept[0], 300))   # the newest, in order, none lost in between


def test_no_backups_starts_the_file_over_at_max_bytes(tmp_path):
    path = logged_lines(tmp_path, 200, backups=0)
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
