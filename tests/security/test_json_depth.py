"""A deeply nested JSON body is a bad body (422), not an internal error (500).

Seen: `[[[[...]]]]` within the 64 KiB body limit made json.loads raise RecursionError,
which the handler answered 500 `internal error: RecursionError` and logged as a bug. The
command it came with must not run, and the supervisor carries on.
"""

from __future__ import annotations

import httpx
import pytest

from harness import SupervisorProcess, sleepers
from unified_system.api.routes import MAX_BODY

DEPTH = 30_000
BODIES = {
    "lists": "[" * DEPTH + "]" * DEPTH,
    "objects": '{"a":' * (DEPTH // 6) + "1" + "}" * (DEPTH // 6),
    "unclosed": "[" * (MAX_BODY - 1),
}


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    with SupervisorProcess(tmp_path_factory.mktemp("json-depth"), sleepers("app")) as sup:
        sup.wait_api(60)   # a busy machine: the API opens after the late imports
        yield sup
        assert sup.stop() == 0


@pytest.mark.parametrize("path", ["/api/reload", "/api/services/app/restart"])
@pytest.mark.parametrize("shape", sorted(BODIES))
def test_a_deeply_nested_body_gets_422_and_changes_nothing(sup, path, shape):
    body = BODIES[shape].encode()
    assert len(body) <= MAX_BODY
    with httpx.Client(base_url=sup.api_url, headers={"X-API-Key": sup.api_key()}, timeout=60) as c:
        before = c.get("/api/services/app").json()
        answer = c.post(path, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert "nested too deeply" in answer.json()["error"] or "not valid JSON" in answer.json()["error"]
        after = c.get("/api/services/app").json()
    assert after["pid"] == before["pid"] and after["restarts"] == before["restarts"]
    assert not [r for r in sup.records() if r.get("event") == "api request failed"]
