"""The reload helper imports nothing from where the supervisor happens to run.

Seen: a `select.py` in the supervisor's working directory was imported on POST /api/reload,
because the helper ran as `python -m`, which puts the working directory first on sys.path.
Whoever can write there (a shared deploy directory, an unpacked upload) ran code as the
supervisor's user. The helper now runs `python -I` in `/`.
"""

from __future__ import annotations

import httpx

from harness import CHILDREN, PY, SupervisorProcess, wait_until

PLANTED = """\
import os, pathlib
pathlib.Path(os.environ["PLANTED_MARK"]).write_text(f"imported by pid {os.getpid()}")
raise ImportError("a planted module ran")
"""


def test_a_module_planted_in_the_working_directory_is_not_imported_on_reload(tmp_path):
    mark = tmp_path / "planted-module-ran"
    for name in ("select.py", "pickle.py", "unified_system.py"):   # each of them shadows one it imports
        (tmp_path / name).write_text(PLANTED)
    with SupervisorProcess(tmp_path, """
        services:
          app: {command: ["{py}", "{children}/sleeper.py"]}
    """, env={"PLANTED_MARK": str(mark)}) as sup:   # the supervisor runs in tmp_path
        sup.wait_api(60)
        text = sup.config_path.read_text()
        sup.config_path.write_text(text + f'  added: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}\n')
        answer = httpx.post(f"{sup.api_url}/api/reload", headers={"X-API-Key": sup.api_key()},
                            timeout=60)
        assert not mark.exists(), mark.read_text()
        assert answer.status_code == 200, answer.text
        assert answer.json()["added"] == ["added"]
        wait_until(lambda: sup.state("added") == "running", 20, "the added service up",
                   seen=lambda: sup.states("added"))
        assert sup.stop() == 0
