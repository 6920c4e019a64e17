"""docs/openapi.yaml against the server: a valid OpenAPI 3.1 document, the same routes as the
server's routing table (both ways), and a running supervisor's answers, success and error,
valid against the documented response schemas."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi

from harness import ROOT, SupervisorProcess, wait_until
from unified_system.api.routes import MAX_BODY, ROUTES
from unified_system.core.states import State

DOC_PATH = ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(DOC_PATH.read_text())


def schema_validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for one schema of the document; its "#/components/..." refs resolve
    against the document's components."""
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return doc["paths"][path][method.lower()]


def response_schema(doc: dict[str, Any], method: str, path: str, status: int,
                    ctype: str = "application/json") -> dict[str, Any] | None:
    """The documented schema of an answer; fails when the status is not documented."""
    answers = operation(doc, method, path)["responses"]
    assert str(status) in answers, f"{method} {path} answered {status}, not in {sorted(answers)}"
    answer = answers[str(status)]
    while "$ref" in answer:
        answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    content = answer.get("content", {})
    assert ctype in content, f"{method} {path} {status}: {ctype} not in {sorted(content)}"
    return content[ctype].get("schema")


def check_answer(doc: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    ctype = response.headers["content-type"].split(";")[0].strip()
    schema = response_schema(doc, method, path, response.status_code, ctype)
    if ctype != "application/json" or schema is None:
        return
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
              for e in schema_validator(doc, schema).iter_errors(response.json())]
    assert not errors, f"{method} {path} {response.status_code}: {errors}"


# --- the document ------------------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1")
    validate_openapi(doc)


def test_every_route_of_the_server_is_documented_and_nothing_else():
    """Read from the routing table itself: a route added there fails here until documented."""
    doc = yaml.safe_load(DOC_PATH.read_text())
    documented = {(path, method.upper()) for path, item in doc["paths"].items()
                  for method in item if method in METHODS}
    served = {(path, method) for path, _rid, methods in ROUTES for method in methods}
    assert served - documented == set(), "routes the server answers but docs/openapi.yaml lacks"
    assert documented - served == set(), "routes docs/openapi.yaml describes but the server lacks"


def test_the_documented_states_are_the_state_machines(doc):
    assert set(doc["components"]["schemas"]["State"]["enum"]) == {s.value for s in State}


def test_the_auth_headers_are_the_servers(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"]["name"] == "X-API-Key"
    assert schemes["HeartbeatToken"]["name"] == "X-Unified-Token"
    assert doc["security"] == [{"ApiKey": []}]
    open_routes = {(p, m) for p, item in doc["paths"].items() for m, op in item.items()
                   if m in METHODS and op.get("security") == []}
    assert open_routes == {("/health", "get"), ("/metrics", "get")}
    heartbeat = operation(doc, "POST", "/api/services/{name}/heartbeat")
    assert heartbeat["security"] == [{"HeartbeatToken": []}]


# --- a running supervisor ----------------------------------------------------------------

CONFIG = """
    services:
      web:
        command: ["{{py}}", "{{children}}/sleeper.py"]
        heartbeat: {{timeout: 1h}}
        env: {{API_TOKEN: "s3cr3t-'quoted\\"-value"}}
      worker:
        command: ["{{py}}", "{{children}}/envdump.py", "{envfile}"]
        depends_on: [web]
"""
CRASHY = """
      crashy:
        command: ["{{py}}", "{{children}}/crasher.py", "1"]
        critical: false
        restart: {{backoff: {{initial: 0}}, max_restarts: 2, window: 60s, cooldown: null}}
"""


def started(tmp: Path, crashy: bool) -> SupervisorProcess:
    envfile = tmp / "worker.env.json"
    s = SupervisorProcess(tmp, CONFIG.format(envfile=envfile) + (CRASHY.format() if crashy else ""))
    s.envfile = envfile
    s.start()
    try:
        s.wait_api(timeout=30)
        s.wait_state("web", "running", timeout=30)
        if crashy:
            s.wait_state("crashy", "fatal", timeout=60)
        wait_until(envfile.exists, 30, "the worker's env dump")
    except BaseException:
        s.close()
        raise
    return s


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    """Shared by the tests that change nothing (no spawn): a fatal crashy, web, worker."""
    s = started(tmp_path_factory.mktemp("openapi"), crashy=True)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def own(tmp_path):
    """A supervisor of the test's own, for tests that restart services."""
    s = started(tmp_path, crashy=False)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def key(sup) -> str:
    return sup.api_key()


def call(sup: SupervisorProcess, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, sup.api_url + path, timeout=kw.pop("timeout", 30), **kw)


def concrete(path: str) -> str:
    return path.replace("{name}", "web")


# The order the documented routes are called in: reads, then commands that leave web running.
ORDER = ["GET", "POST /api/services/{name}/heartbeat", "POST /api/services/{name}/stop",
         "POST /api/services/{name}/start", "POST /api/services/{name}/restart", "POST /api/reload"]


def _rank(route: tuple[str, str]) -> int:
    path, method = route
    text = f"{method} {path}"
    return next(i for i, prefix in enumerate(ORDER) if text == prefix or method == prefix)


def plant_dump(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = "web-20260101T000000.000000Z.json"
    (directory / name).write_text(json.dumps({"service": "web", "reason": "crash", "last_lines": []}))
    return name


def test_every_documented_route_answers_as_documented(doc, own):
    sup, key = own, own.api_key()
    routes = sorted(((p, m.upper()) for p, item in doc["paths"].items() for m in item if m in METHODS),
                    key=_rank)
    token = json.loads(sup.envfile.read_text())["UNIFIED_TOKEN"]
    worker_beat = "/api/services/worker/heartbeat"
    for path, method in routes:
        if path == "/api/events":
            continue   # a stream: test_the_event_stream_is_as_documented
        url = worker_beat if path.endswith("/heartbeat") else concrete(path)
        if path == "/api/crashes/{name}":   # nothing crashed here: a dump as §8 writes one
            url = "/api/crashes/" + plant_dump(sup.state_dir / "crashes")
        headers = {"X-Unified-Token": token} if path.endswith("/heartbeat") else {"X-API-Key": key}
        answer = call(sup, method, url, headers=headers, timeout=120 if path == "/api/reload" else 30)
        assert answer.status_code < 300 or (path == "/health" and answer.status_code == 503), \
            f"{method} {url}: {answer.status_code} {answer.text[:500]}"
        check_answer(doc, method, path, answer)
        if path.endswith("/stop"):
            wait_until(lambda: call(sup, "GET", "/api/services/web", headers={"X-API-Key": key}
                                    ).json()["state"] == "stopped", 30, "web stopped")


def test_a_service_with_a_crash_history_is_as_documented(doc, sup, key):
    """crashy is fatal with its circuit open: last_exit, circuit, suggestions, health."""
    answer = call(sup, "GET", "/api/services/crashy", headers={"X-API-Key": key})
    check_answer(doc, "GET", "/api/services/{name}", answer)
    body = answer.json()
    assert body["state"] == "fatal" and body["last_exit"]["reason"] == "crash"
    answer = call(sup, "GET", "/api/suggestions", headers={"X-API-Key": key})
    check_answer(doc, "GET", "/api/suggestions", answer)
    assert {s["rule"] for s in answer.json()["suggestions"]} >= {"circuit_open"}
    check_answer(doc, "GET", "/health", call(sup, "GET", "/health"))


def read_frames(lines: Iterator[str], deadline: float, want: int) -> list[tuple[str, Any]]:
    """Up to `want` (event, data) frames from an SSE stream's lines, keep-alives skipped."""
    frames: list[tuple[str, Any]] = []
    event, data = "", ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and event:
            frames.append((event, json.loads(data)))
            event, data = "", ""
            if len(frames) >= want or time.monotonic() > deadline:
                break
    return frames


def test_the_event_stream_is_as_documented(doc, own):
    sup, key = own, own.api_key()
    schemas = doc["components"]["schemas"]
    snapshot, event = schema_validator(doc, schemas["Snapshot"]), schema_validator(doc, schemas["Event"])
    with httpx.stream("GET", sup.api_url + "/api/events", headers={"X-API-Key": key},
                      timeout=httpx.Timeout(30, read=60)) as stream:
        assert stream.status_code == 200
        check_answer(doc, "GET", "/api/events", stream)
        lines = stream.iter_lines()
        first: list[str] = []
        for line in lines:
            if line == "":
                break
            first.append(line)
        assert first[0] == "event: snapshot"
        snapshot.validate(json.loads(first[1][len("data: "):]))
        restarted = call(sup, "POST", "/api/services/web/restart", headers={"X-API-Key": key})
        assert restarted.status_code == 202
        frames = read_frames(lines, time.monotonic() + 60, want=4)
    assert frames, "no event after a restart"
    for name, data in frames:
        assert name == data["type"]
        errors = [e.message[:300] for e in event.iter_errors(data)]
        assert not errors, f"{name}: {data}: {errors}"
    assert "state" in {name for name, _ in frames}


# --- error answers, each with the worst input for it --------------------------------------

BIG = 10**30


@pytest.mark.parametrize("method, path, url, headers, body, status", [
    ("GET", "/api/services/{name}", "/api/services/nope", {}, None, 404),
    ("GET", "/api/services/{name}/logs", "/api/services/nope/logs", {}, None, 404),
    ("GET", "/api/services/{name}/logs", f"/api/services/web/logs?lines={BIG}", {}, None, 422),
    ("GET", "/api/services/{name}/logs", "/api/services/web/logs?lines=-1", {}, None, 422),
    ("GET", "/api/services/{name}/logs", "/api/services/web/logs?lines=%27%22", {}, None, 422),
    ("POST", "/api/services/{name}/restart", "/api/services/web/restart", {"X-API-Key": None}, None, 401),
    ("POST", "/api/services/{name}/stop", "/api/services/web/stop",
     {"X-API-Key": "'\"; DROP" + "k" * 4000}, None, 401),
    ("POST", "/api/reload", "/api/reload", {"X-API-Key": None}, None, 401),
    ("POST", "/api/services/{name}/start", "/api/services/nope/start", {}, None, 404),
    ("POST", "/api/services/{name}/restart", "/api/services/web/restart", {}, b"[1, 2]", 422),
    ("POST", "/api/services/{name}/restart", "/api/services/web/restart", {}, b"{'not json", 422),
    ("POST", "/api/services/{name}/start", "/api/services/web/start", {}, b"{" * (MAX_BODY + 1), 413),
    ("POST", "/api/services/{name}/heartbeat", "/api/services/worker/heartbeat", {}, None, 401),
    ("POST", "/api/services/{name}/heartbeat", "/api/services/worker/heartbeat",
     {"X-Unified-Token": "forged-'\"-" + "t" * 1000}, None, 403),
    ("POST", "/api/services/{name}/heartbeat", "/api/services/nope/heartbeat",
     {"X-Unified-Token": "x"}, None, 404),
], ids=lambda v: v if isinstance(v, (str, int)) and len(str(v)) < 40 else None)
def test_error_answers_are_as_documented(doc, sup, key, method, path, url, headers, body, status):
    sent = {"X-API-Key": key, **headers}
    sent = {k: v for k, v in sent.items() if v is not None}
    answer = call(sup, method, url, headers=sent, content=body)
    assert answer.status_code == status, answer.text[:500]
    check_answer(doc, method, path, answer)
    assert key not in answer.text


def test_an_invalid_new_config_is_refused_as_documented(doc, sup, key):
    original = sup.config_path.read_text()
    sup.config_path.write_text(original + "  broken:\n    command: []\n    restart: {policy: 'sometimes\"'}\n")
    try:
        answer = call(sup, "POST", "/api/reload", headers={"X-API-Key": key}, timeout=120)
    finally:
        sup.config_path.write_text(original)
    assert answer.status_code == 422, answer.text[:500]
    check_answer(doc, "POST", "/api/reload", answer)
    assert len(answer.json()["errors"]) >= 2


def test_answers_hold_no_secret(sup, key):
    """The quoted secret in web's env never comes back, whichever route is read."""
    for path in ("/api/services", "/api/services/web", "/api/diagnostics", "/api/suggestions",
                 "/api/services/web/logs"):
        text = call(sup, "GET", path, headers={"X-API-Key": key}).text
        assert "s3cr3t" not in text, path


def test_the_document_names_no_file_outside_the_repository():
    text = DOC_PATH.read_text()
    assert "shared/" not in text
    assert Path(ROOT / "docs" / "SPEC.md").is_file()
