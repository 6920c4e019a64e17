"""An api_key file that anyone but the supervisor's user could read is a leaked key.

Before, the supervisor tightened such a file to 0600 and went on trusting the key in it:
whoever had read it meanwhile kept full control of the API. Now the key is replaced, with a
warning, and the old one is refused.
"""

from __future__ import annotations

import os
import stat

import httpx
import pytest

from harness import SupervisorProcess, wait_until
from unified_system import logsetup
from unified_system.api.auth import load_or_create_key

OLD_KEY = "old-key-someone-else-read-0123456789abcdef"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660], ids=oct)
def test_a_key_file_open_to_group_or_others_is_replaced(tmp_path, mode):
    path = tmp_path / "api_key"
    path.write_text(OLD_KEY + "\n")
    os.chmod(path, mode)
    key = load_or_create_key(tmp_path)
    assert key != OLD_KEY and len(key) >= 40
    assert path.read_text().strip() == key and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path) == key   # a private file is kept


def test_a_private_key_file_is_kept_and_a_link_is_replaced_not_followed(tmp_path):
    path = tmp_path / "api_key"
    path.write_text(OLD_KEY + "\n")
    os.chmod(path, 0o600)
    assert load_or_create_key(tmp_path) == OLD_KEY
    target = tmp_path / "elsewhere"
    target.write_text(OLD_KEY + "\n")
    os.chmod(target, 0o600)
    path.unlink()
    path.symlink_to(target)
    key = load_or_create_key(tmp_path)
    assert key != OLD_KEY and not path.is_symlink() and target.read_text().strip() == OLD_KEY


def test_the_supervisor_replaces_a_world_readable_key_and_refuses_the_old_one(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "api_key").write_text(OLD_KEY + "\n")
    os.chmod(state / "api_key", 0o644)
    with SupervisorProcess(tmp_path, """
        services:
          app: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        sup.wait_api(60)
        key = sup.api_key()
        assert key != OLD_KEY and stat.S_IMODE((state / "api_key").stat().st_mode) == 0o600
        with httpx.Client(base_url=sup.api_url, timeout=30) as c:
            old = c.post("/api/services/app/restart", headers={"X-API-Key": OLD_KEY})
            assert old.status_code == 401, old.text
            new = c.post("/api/services/app/restart", headers={"X-API-Key": key})
            assert new.status_code == 202, new.text
        warned = wait_until(lambda: [r for r in sup.records()
                                     if r.get("event", "").startswith("api_key file was not private")],
                            10, "the warning", seen=lambda: sup.output()[-2000:])
        assert warned[0]["level"] == "warning" and warned[0]["mode"] == "0o644"
        assert sup.stop() == 0
    assert OLD_KEY not in sup.output()


def test_the_warning_names_the_file(tmp_path):
    import io
    stream = io.StringIO()
    logsetup.configure(None, "INFO", "json", stream=stream)
    try:
        (tmp_path / "api_key").write_text(OLD_KEY)
        os.chmod(tmp_path / "api_key", 0o604)
        load_or_create_key(tmp_path)
    finally:
        logsetup.stop()
    assert str(tmp_path / "api_key") in stream.getvalue() and OLD_KEY not in stream.getvalue()
