"""YAML alias expansion is capped: a "billion laughs" is refused with its file and line.

Seen: a 415-byte services.yaml (nine aliases of nine aliases, nine levels deep) made
`check` use 1.6 GB before anything was validated. Now the expansion stops after
yamlsrc.MAX_ALIAS_VALUES values built again through aliases, and `check` exits 2 naming
the file and the line. The children run under an address-space limit, so the code before
the fix fails this test with a MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import resource
import subprocess
import textwrap

import httpx

from harness import PY, START, SupervisorProcess
from unified_system.config import load_config

LEVELS = "abcdefghi"
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip(LEVELS[:-1], LEVELS[1:], strict=True))
ADDRESS_SPACE = 1 << 30   # a plain `check` needs well under this; the old expansion did not


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_check_refuses_a_billion_laughs_naming_file_and_line(tmp_path):
    path = tmp_path / "services.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 500
    done = subprocess.run([PY, str(START), "check", "-c", str(path)], capture_output=True,
                          text=True, timeout=60, preexec_fn=_limited, cwd=tmp_path)
    said = done.stdout + done.stderr
    assert done.returncode == 2, said[-3000:]
    assert f"{path}:5:1: YAML aliases here expand to more than" in said, said[-3000:]
    assert "Traceback" not in said


def test_merge_keys_per_service_stay_well_under_the_cap(tmp_path):
    # The use aliases are for: one defaults block merged into each of 200 services.
    services = "".join(f'  s{i}:\n    <<: *defaults\n    command: ["{PY}", "-c", "pass"]\n'
                       for i in range(200))
    (tmp_path / "services.yaml").write_text(textwrap.dedent("""\
        x-defaults: &defaults
          restart: {policy: on-failure, backoff: {initial: 1s, max: 60s, multiplier: 2}}
          env: {A: "1", B: "2", C: "3", D: "4", E: "5"}
          stop: {signal: SIGTERM, timeout: 10s}
        services:
        """) + services)
    loaded = load_config(tmp_path / "services.yaml")
    assert len(loaded.config.services) == 200
    assert loaded.config.services["s199"].env["E"] == "5"


def test_a_reload_of_a_billion_laughs_is_refused_and_the_supervisor_carries_on(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          app: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        sup.wait_api(60)
        sup.config_path.write_text(sup.config_path.read_text() + BOMB.replace("a: &a", "x-a: &a"))
        answer = httpx.post(f"{sup.api_url}/api/reload", headers={"X-API-Key": sup.api_key()},
                            timeout=120)
        assert answer.status_code == 422, answer.text
        assert any("YAML aliases here expand" in e for e in answer.json()["errors"]), answer.text
        health = httpx.get(f"{sup.api_url}/health", timeout=30)
        assert health.status_code == 200 and health.json()["services"] == {"app": "running"}
        assert sup.stop() == 0
