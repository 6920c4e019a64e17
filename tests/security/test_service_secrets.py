"""`secrets:` of a service: one generated value per name, shared by the services that list
it, kept in <state_dir>/secrets (0600), and never in an answer of the API, even when the
child prints it and its name says nothing of a secret."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import httpx

from harness import PY, START, SupervisorProcess, wait_until

CONFIG = """
    services:
      writer:
        command: ["{py}", "{children}/envdump.py", "%(dir)s/writer.json"]
        secrets: [LEDGER, SHARED_PASSWORD]
        env: {ECHO_VARS: LEDGER}
      reader:
        command: ["{py}", "{children}/envdump.py", "%(dir)s/reader.json"]
        secrets: [LEDGER]
      other:
        command: ["{py}", "{children}/envdump.py", "%(dir)s/other.json"]
"""


def run(tmp_path):
    return SupervisorProcess(tmp_path, CONFIG % {"dir": tmp_path})


def dumps(tmp_path) -> dict[str, dict[str, str]]:
    names = ("writer", "reader", "other")
    wait_until(lambda: all((tmp_path / f"{n}.json").exists() for n in names), 20, "env dumps")
    return {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in names}


def test_a_secret_is_shared_by_name_kept_0600_and_redacted(tmp_path):
    with run(tmp_path) as sup:
        sup.wait_api(30)
        envs = dumps(tmp_path)
        ledger = envs["writer"]["LEDGER"]
        assert len(ledger) >= 40 and envs["reader"]["LEDGER"] == ledger
        assert "LEDGER" not in envs["other"] and "SHARED_PASSWORD" not in envs["reader"]
        assert envs["writer"]["SHARED_PASSWORD"] not in (ledger, "")
        path = sup.state_dir / "secrets" / "LEDGER"
        assert path.read_text().strip() == ledger
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        # The child printed it: the log answer hides it, though "LEDGER" names no secret.
        wait_until(lambda: "said" in sup.output(), 10, "the echo line")
        with httpx.Client(base_url=sup.api_url, headers=sup.auth(), timeout=10) as c:
            for path_ in ("/api/services/writer/logs?lines=100", "/api/services/writer",
                          "/api/services", "/api/diagnostics"):
                answer = c.get(path_).text
                assert ledger not in answer, path_
            assert "said ***" in c.get("/api/services/writer/logs?lines=100").text
        assert sup.stop() == 0

    # The next run hands over the same value; a file someone else could read is replaced.
    (tmp_path / "writer.json").unlink()
    (tmp_path / "reader.json").unlink()
    (tmp_path / "other.json").unlink()
    shared = sup.state_dir / "secrets" / "SHARED_PASSWORD"
    old_password = shared.read_text().strip()
    os.chmod(shared, 0o644)
    with run(tmp_path) as sup:
        envs = dumps(tmp_path)
        assert envs["writer"]["LEDGER"] == envs["reader"]["LEDGER"] == ledger
        assert envs["writer"]["SHARED_PASSWORD"] not in (old_password, "")
        assert stat.S_IMODE(shared.stat().st_mode) == 0o600
        assert sup.stop() == 0


def test_a_secret_named_in_env_too_or_badly_is_a_config_error(tmp_path):
    path = tmp_path / "services.yaml"
    path.write_text("""
services:
  a:
    command: [sleep, "1"]
    secrets: [TOKEN, "not a name", UNIFIED_TOKEN]
    env: {TOKEN: x}
""")
    done = subprocess.run([PY, str(START), "check", "-c", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "not an environment variable name" in said
