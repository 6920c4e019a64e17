"""Issue 19 part 5, with the program users bring: the application's real backend (FastAPI under
uvicorn, `python -m backend`) under the supervisor. uvicorn's access log, one INFO line per
request, goes to logs/backend.log and not to the default console; `run --verbose` echoes it.
The requests are the worst a client can make of an access line: level words and a stack
trace's first line in the path, an encoded newline, a 404, a refused write, an 8 KB target."""

from __future__ import annotations

import secrets

import httpx
import pytest

from harness import PY, ROOT, SupervisorProcess, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BACKEND = ROOT / "services" / "backend"


def backend_config(port: int, data: str) -> str:
    return f"""
        services:
          backend:
            command: ["{PY}", "-m", "backend", "--port", "{port}"]
            cwd: {BACKEND}
            env: {{PYTHONPATH: "{ROOT / 'src'}", LOG_LEVEL: INFO, PYTHONUNBUFFERED: "1",
                   DATA_DIR: "{data}", AI_ENABLED: "false"}}
            readiness: {{notify: true}}
    """


def send_requests(port: int, tag: str) -> list[str]:
    """Requests whose access lines each carry `tag`; returns the paths asked for."""
    base = f"http://127.0.0.1:{port}"
    paths = [f"/api/status?tag={tag}",
             f"/api/trades?limit=5&tag={tag}",
             f"/ERROR-Traceback-WARNING-CRITICAL-{tag}",       # 404: level words in the line
             f"/Traceback%20(most%20recent%20call%20last):-{tag}",
             f"/api/trades/summary?x=%0AERROR%20forged%20line&tag={tag}",
             f"/{'A' * 8000}-{tag}"]
    with httpx.Client(timeout=30) as client:
        for path in paths:
            assert client.get(base + path).status_code in (200, 404), path
        refused = client.post(base + f"/api/trades?tag={tag}", json={"fill_id": "x"})
        assert 400 <= refused.status_code < 500   # no ledger token: refused, logged as info
    return paths


def logged(sup: SupervisorProcess, tag: str, count: int) -> bool:
    try:
        text = (sup.state_dir / "logs" / "backend.log").read_text(errors="replace")
    except FileNotFoundError:
        return False
    return sum(1 for line in text.splitlines() if tag in line and " HTTP/1.1\" " in line) >= count


def test_uvicorn_access_lines_go_to_the_log_file_not_the_console(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, backend_config(port, str(tmp_path / "data"))) as sup:
        sup.wait_state("backend", "running", 60)
        tag = secrets.token_hex(8)
        paths = send_requests(port, tag)
        wait_until(lambda: logged(sup, tag, len(paths) + 1), 30, "every access line in backend.log",
                   seen=lambda: (sup.state_dir / "logs" / "backend.log").read_text()[-2000:])
        # The summary of the lines left out is written once the 5 s window closes.
        wait_until(lambda: "backend | " in sup.output() and "lines in the last 5 s" in sup.output(),
                   30, "the console's summary of backend's info lines",
                   seen=lambda: sup.output()[-3000:])
        out = sup.output()
        assert tag not in out, [line for line in out.splitlines() if tag in line][:3]
        assert "forged line" not in out and "AAAAAAAA" not in out
        assert "backend" in out and "running" in out   # the supervisor's own lines are there
        log = (sup.state_dir / "logs" / "backend.log").read_text(errors="replace")
        assert f'"GET /api/status?tag={tag} HTTP/1.1" 200' in log
        assert f"POST /api/trades?tag={tag} HTTP/1.1\" 4" in log
        assert sup.stop() == 0


def test_verbose_echoes_uvicorn_access_lines(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, backend_config(port, str(tmp_path / "data")),
                           args=("--verbose",)) as sup:
        sup.wait_state("backend", "running", 60)
        tag = secrets.token_hex(8)
        paths = send_requests(port, tag)
        wait_until(lambda: sum(1 for line in sup.output().splitlines()
                               if line.startswith("backend | ") and tag in line) >= len(paths) + 1,
                   30, "every access line on the console", seen=lambda: sup.output()[-3000:])
        out = sup.output()
        assert f'"GET /api/status?tag={tag} HTTP/1.1" 200' in out
        assert "lines in the last" not in out
        assert logged(sup, tag, len(paths) + 1)   # and in the log file as well
        assert sup.stop() == 0
