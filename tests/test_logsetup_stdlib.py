"""logsetup without structlog (issue 20): the same JSON lines and console lines as before,
a traceback kept (its secret hidden), and structlog never imported."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

from harness import wait_until
from unified_system import logsetup


def test_json_and_console_lines_keep_their_layout_and_a_traceback_hides_secrets(tmp_path):
    console = io.StringIO()
    logsetup.configure(tmp_path, "INFO", "console", stream=console)
    try:
        logsetup.hide_values(("hunter2-secret-value",))
        log = logsetup.get_logger(component="api")
        log.info("spawned", service="web", api_token="x", pid=12, gone=None, note="two words")
        try:
            raise RuntimeError("failed with hunter2-secret-value")
        except RuntimeError:
            log.exception("boom", service="web")
        path = tmp_path / "supervisor.log"
        lines = wait_until(lambda: path.exists() and len(path.read_text().splitlines()) == 2
                           and path.read_text().splitlines(), 5, "two records")
    finally:
        logsetup.stop()
    first, second = (json.loads(line) for line in lines)
    assert list(first) == ["component", "service", "api_token", "pid", "gone", "note", "event",
                           "level", "timestamp"]
    assert first["api_token"] == "***" and first["level"] == "info"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["timestamp"])
    assert second["level"] == "error" and "RuntimeError" in second["exception"]
    assert "hunter2-secret-value" not in "".join(lines)
    shown = console.getvalue().splitlines()
    assert re.fullmatch(r"\S+Z \[info     \] spawned        api_token=\*\*\* component=api "
                        r"note='two words' pid=12 service=web", shown[0])
    assert "hunter2-secret-value" not in console.getvalue()


def test_the_package_imports_no_structlog_and_no_asyncio():
    src = str(Path(logsetup.__file__).resolve().parents[1])
    code = (f"import sys; sys.path.insert(0, {src!r}); from unified_system import logsetup; "
            "print(sorted({'structlog', 'asyncio'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
