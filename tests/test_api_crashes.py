"""`GET /api/crashes` and `GET /api/crashes/<file>` (SPEC §6 extension) against a real
supervisor: a real crash's dump listed and read with its secret replaced, the key required,
and forged file names (traversal, a link, a file that is not a dump) answered 404.
Also the service object's `dependencies` (each dependency's condition), which the dashboard
draws on its graph's edges."""

from __future__ import annotations

import os

import httpx
import pytest

from harness import SupervisorProcess, wait_until

SECRET = "p4ss\"wo'rd\\with quotes"


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crashes")
    s = SupervisorProcess(tmp, """
        services:
          db:
            command: ["{py}", "{children}/sleeper.py"]
          leaky:
            command: ["{py}", "{children}/secret_crasher.py", "DB_PASSWORD"]
            env: {DB_PASSWORD: "SECRET_HERE"}
            critical: false
            depends_on: {db: {condition: started, restart: true}}
            restart: {backoff: {initial: 0}, max_restarts: 2, window: 60s, cooldown: null}
    """.replace("SECRET_HERE", SECRET.replace("\\", "\\\\").replace('"', '\\"')))
    with s:
        s.wait_api()
        yield s


def get(sup, path, **kw):
    kw.setdefault("headers", sup.auth())
    return httpx.get(sup.api_url + path, timeout=5, **kw)


def listed(sup):
    return get(sup, "/api/crashes").json()["crashes"]


def test_a_crash_is_listed_and_read_redacted(sup):
    dumps = wait_until(lambda: [d for d in listed(sup) if d["service"] == "leaky"], 30,
                       "a crash dump of leaky", seen=lambda: listed(sup))
    first = dumps[0]
    assert first["file"].startswith("leaky-") and first["size"] > 0
    r = get(sup, f"/api/crashes/{first['file']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["file"] == first["file"]
    dump = body["dump"]
    assert dump["service"] == "leaky" and dump["exit"]["code"] == 3, dump
    assert any("connecting with" in line for line in dump["last_lines"]), dump["last_lines"]
    assert SECRET not in r.text and "p4ss" not in r.text
    assert "***" in " ".join(dump["last_lines"])


def test_crashes_need_the_key(sup):
    assert get(sup, "/api/crashes", headers={}).status_code == 401
    assert get(sup, "/api/crashes/x.json", headers={"X-API-Key": "wrong"}).status_code == 401


@pytest.mark.parametrize("name", ["..%2Fapi_key", "..%2F..%2Fetc%2Fpasswd", "api_key",
                                  "leaky-20260101T000000.000000Z.json", "%00", "x" * 5000])
def test_forged_dump_names_are_404(sup, name):
    r = get(sup, f"/api/crashes/{name}")
    assert r.status_code in (404, 414), r.text
    assert sup.api_key() not in r.text


def test_a_link_or_a_stray_file_is_not_a_dump(sup):
    crashes = sup.state_dir / "crashes"
    wait_until(crashes.is_dir, 30, "the crashes directory")
    link = crashes / "db-20260101T000000.000000Z.json"
    os.symlink(sup.state_dir / "api_key", link)
    (crashes / "notes.txt").write_text("not a dump")
    try:
        assert get(sup, f"/api/crashes/{link.name}").status_code == 404
        names = {d["file"] for d in listed(sup)}
        assert link.name not in names and "notes.txt" not in names
    finally:
        link.unlink()
        (crashes / "notes.txt").unlink()


def test_service_objects_carry_each_dependency_condition(sup):
    leaky = get(sup, "/api/services/leaky").json()
    assert leaky["depends_on"] == ["db"]
    assert leaky["dependencies"] == {"db": {"condition": "started", "restart": True}}
    assert get(sup, "/api/services/db").json()["dependencies"] == {}
