"""`top`, the terminal UI: driven by Textual's own pilot against a real supervisor, and once
for real in tmux (send-keys, capture-pane)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from harness import PY, START, SupervisorProcess, wait_until

pytest.importorskip("textual")

from textual.widgets import DataTable, RichLog  # noqa: E402

from unified_system.tui.app import Confirm, Top  # noqa: E402
from unified_system.tui.feed import Feed  # noqa: E402

CONFIG = """
    services:
      web: {command: ["{py}", "{children}/flood.py", "1", "0.2"]}
      other: {command: ["{py}", "{children}/sleeper.py"]}
"""


@pytest.fixture
def sup(tmp_path):
    with SupervisorProcess(tmp_path, CONFIG) as s:
        s.wait_api()
        s.wait_state("web", "running")
        s.wait_state("other", "running")
        yield s
        assert s.stop() == 0


def pid_of(sup, name: str, key: str) -> int | None:
    return httpx.get(f"{sup.api_url}/api/services/{name}", headers={"X-API-Key": key}, timeout=5).json()["pid"]


async def until(pilot, cond, timeout: float = 20.0, what: str = "condition") -> None:
    """The pilot's clock: let the app run until `cond()` holds, with a deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def text_of(log: RichLog) -> str:
    return "\n".join(strip.text for strip in log.lines)


def test_the_table_the_log_and_a_confirmed_restart(sup):
    key = sup.api_key()
    before = pid_of(sup, "web", key)
    feed = Feed(sup.api_url, key)

    async def scenario() -> None:
        app = Top(feed)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.query_one(DataTable)
            await until(pilot, lambda: table.row_count == 2, what="two services in the table")
            assert table.get_row("web")[1] == "running"
            await until(pilot, lambda: "flood" in text_of(app.query_one("#log", RichLog)),
                        what="web's output in the log pane")
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, Confirm), what="the confirmation")
            await pilot.press("n")                          # no: nothing happens
            await until(pilot, lambda: not isinstance(app.screen, Confirm), what="the dialog to close")
            assert pid_of(sup, "web", key) == before
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, Confirm), what="the confirmation")
            await pilot.press("y")
            await until(pilot, lambda: (p := pid_of(sup, "web", key)) and p != before, what="a new pid")
            await until(pilot, lambda: "web: restart" in text_of(app.query_one("#events", RichLog)),
                        what="the restart in the event pane")
            await until(pilot, lambda: len(feed.series["web"].cpu) >= 2, what="sparkline samples")
            await pilot.press("down")                       # select the other service
            await until(pilot, lambda: app.selected == "other", what="the second row selected")
            await pilot.press("q")
    try:
        asyncio.run(scenario())
    finally:
        feed.close()


def test_a_wrong_key_is_said_not_crashed_on(sup):
    feed = Feed(sup.api_url, "wrong-key")

    async def scenario() -> None:
        app = Top(feed)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, Confirm) or app.selected is None, 5)
            if isinstance(app.screen, Confirm):
                await pilot.press("y")
            await pilot.press("q")
    try:
        asyncio.run(scenario())   # whatever the API refuses, the UI stays up and quits cleanly
    finally:
        feed.close()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_top_in_a_real_terminal(sup, tmp_path):
    session = f"top-{sup.proc.pid}"
    tmux = ["tmux", "-L", session]
    cmd = f"{PY} {START} top -c {sup.config_path}"
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "150", "-y", "45", cmd], check=True)
    try:
        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout
        wait_until(lambda: "running" in screen() and "other" in screen(), 30, "the table on screen", seen=screen)
        subprocess.run([*tmux, "send-keys", "-t", session, "x"], check=True)
        wait_until(lambda: "Stop web?" in screen() or "Stop other?" in screen(), 15, "the dialog", seen=screen)
        subprocess.run([*tmux, "send-keys", "-t", session, "y"], check=True)
        wait_until(lambda: "stopped" in screen(), 20, "a stopped service on screen", seen=screen)
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        wait_until(lambda: subprocess.run([*tmux, "has-session", "-t", session],
                                          capture_output=True).returncode != 0, 15, "top to quit", seen=screen)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_the_supervisor_never_imports_textual():
    probe = "import sys, unified_system.core.supervisor, unified_system.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(START.parent / "src")}).stdout
    assert out.strip() == "False"
