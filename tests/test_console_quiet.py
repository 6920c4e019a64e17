"""Issue 19 part 5: the console shows warnings, errors and the supervisor's own lines, and
counts a chatty service's info lines; logs/<service>.log keeps everything; --verbose shows all."""

from __future__ import annotations

import pytest

from harness import SupervisorProcess, wait_until
from unified_system.proc.quiet import INFO, SHOW, UNMARKED, level_of


@pytest.mark.parametrize("line, level", [
    (b"INFO:     127.0.0.1:5000 - \"GET /api/trades HTTP/1.1\" 200 OK", INFO),
    (b"INFO:     127.0.0.1:5000 - \"GET / HTTP/1.1\" 500 Internal Server Error", INFO),
    (b"2026-12-03 10:00:00 DEBUG tick", INFO),
    (b"[info] fill 3", INFO),
    (b"WARNING: low balance", SHOW),
    (b"2026-12-03 ERROR broker down", SHOW),
    (b"level=error msg=boom", SHOW),
    (b"Traceback (most recent call last):", SHOW),
    (b"ValueError: bad tick", SHOW),
    (b"TypeError: x is not a function", SHOW),
    (b'{"level":"info","msg":"an error in the text"}', INFO),
    (b'{"levelname": "ERROR", "msg": "x"}', SHOW),
    (b'{"level":30,"msg":"pino info"}', INFO),
    (b'{"level":50,"msg":"pino error"}', SHOW),
    (b'{"at":"2026","msg":"listening","fd":3}', UNMARKED),
    (b"sleeper web up pid=42", UNMARKED),
    (b"ErrorHandler registered", UNMARKED),
    (b"information: INFORMAL", UNMARKED),
    (b"", UNMARKED),
    (b"\xff\xfe\x00 ERROR \x1b[31m", SHOW),
])
def test_level_of_a_line(line, level):
    assert level_of(line) == level


CHATTY = """
    services:
      chatty: {command: ["{py}", "{children}/chatty.py", "300"]}
"""


@pytest.mark.slow
def test_chatty_info_is_summarised_errors_reach_the_console_and_the_log_has_all(tmp_path):
    with SupervisorProcess(tmp_path, CHATTY) as sup:
        wait_until(lambda: "lines in the last 5 s" in sup.output(), 30, "the summary line",
                   seen=lambda: sup.output()[-3000:])
        out = sup.output()
        assert "chatty | ERROR broker rejected order 7" in out
        assert "chatty | WARNING: broker latency 900 ms" in out
        assert "chatty | Traceback (most recent call last):" in out
        assert 'chatty |     raise ValueError("bad tick from the feed")' in out
        assert "chatty | ValueError: bad tick from the feed" in out
        assert "chatty | chatty done" in out                       # unmarked: shown
        assert "fill 0 0.1 BTC" not in out and "json fill" not in out
        assert "chatty | 301 lines in the last 5 s" in out, out[-3000:]
        log = (sup.state_dir / "logs" / "chatty.log").read_text()
        assert all(f"fill {i} 0.1 BTC" in log for i in range(300))
        assert "json fill" in log and "ERROR broker rejected" in log
        assert "state" in out                                      # the supervisor's own lines
        assert sup.stop() == 0


@pytest.mark.slow
def test_verbose_shows_every_line(tmp_path):
    with SupervisorProcess(tmp_path, CHATTY, args=("--verbose",)) as sup:
        wait_until(lambda: "chatty done" in sup.output(), 30, "the last line",
                   seen=lambda: sup.output()[-3000:])
        out = sup.output()
        assert all(f"fill {i} 0.1 BTC" in out for i in range(300))
        assert "json fill" in out and "lines in the last" not in out
        assert sup.stop() == 0


@pytest.mark.slow
def test_a_build_is_one_progress_line_and_a_failed_one_shows_its_last_lines(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          good:
            command: ["{py}", "{children}/sleeper.py"]
            build: {command: ["{py}", "{children}/builder.py", "40"]}
          bad:
            command: ["{py}", "{children}/sleeper.py"]
            build: {command: ["{py}", "{children}/builder.py", "40", "3"]}
    """) as sup:
        sup.wait_state("good", "running", 30)
        sup.wait_state("bad", "fatal", 30)
        wait_until(lambda: "build step 39 of 40" in sup.output(), 10, "bad's last lines",
                   seen=lambda: sup.output()[-3000:])
        out = sup.output()
        good = [ln for ln in out.splitlines() if ln.startswith("good | ")]
        assert good[0].startswith("good | building good: python") and len(good) <= 2, good
        assert "builder.py 40 … " in good[0] and good[0].endswith(" s")   # then the sleeper's line
        bad = [ln for ln in out.splitlines() if ln.startswith("bad  | ")]
        assert "… failed after" in bad[0] and "exit code 3" in bad[0], bad
        assert "bad  |   build step 39 of 40" in out and "build step 0 of 40" not in out
        log = (sup.state_dir / "logs" / "good.log").read_text()
        assert "build step 0 of 40" in log and "build step 39 of 40" in log
        assert sup.stop() == 0
