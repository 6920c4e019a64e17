"""The JSON Schema of services.yaml (docs/services.schema.json): generated, committed, current,
and in agreement with `check` on the repository's configs and fixtures."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from harness import PY, ROOT, START
from unified_system.config import ConfigErrors, load_config
from unified_system.config.units import parse_duration, parse_size

COMMITTED = ROOT / "docs" / "services.schema.json"
FIXTURES = ROOT / "tests" / "fixtures"
ACCEPTED = sorted((FIXTURES / "schema" / "accepted").glob("*.yaml"))
REFUSED = sorted((FIXTURES / "schema" / "refused").glob("*.yaml"))
# Refused by `check` for what no schema can see: a cycle, a missing cwd or executable.
REFUSED_BEYOND_SCHEMA = {"cycle.yaml", "spec_example.yaml"}
GRAPH_FIXTURES = sorted((FIXTURES / "config").glob("*.yaml"))
CHILD_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


@pytest.fixture(scope="module")
def printed() -> dict[str, Any]:
    """What `python start_system.py schema` prints, run as a user runs it."""
    out = subprocess.run([PY, str(START), "schema"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def validator(printed: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(printed)


def errors_of(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:200]}"
            for e in validator.iter_errors(doc)]


def test_the_committed_schema_is_what_the_command_prints(printed):
    committed = json.loads(COMMITTED.read_text())
    assert committed == printed, (
        "docs/services.schema.json is out of date: python start_system.py schema > "
        "docs/services.schema.json")


def test_the_schema_is_a_valid_2020_12_schema(printed):
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(printed)


def test_every_key_has_a_description(printed):
    missing = [f"{model}.{key}" for model, body in printed["$defs"].items()
               for key, prop in body.get("properties", {}).items() if not prop.get("description")]
    missing += [key for key, prop in printed["properties"].items() if not prop.get("description")]
    assert not missing, f"add a sentence to config/keydocs.py KEYS for: {missing}"


def test_services_yaml_names_the_schema_for_editors():
    first = (ROOT / "services.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=docs/services.schema.json"
    assert (ROOT / first.split("=", 1)[1]).is_file()


def test_the_repository_services_yaml_is_valid(validator):
    doc = yaml.safe_load((ROOT / "services.yaml").read_text())
    assert errors_of(validator, doc) == []


# many_errors.yaml is refused for schema reasons: one of the refused sample below
@pytest.mark.parametrize("path", [p for p in [*GRAPH_FIXTURES, *ACCEPTED] if p.name != "many_errors.yaml"],
                         ids=lambda p: p.name)
def test_what_check_accepts_the_schema_accepts(validator, path):
    try:
        load_config(path, environ=CHILD_ENV)
    except ConfigErrors as exc:
        assert path.name in REFUSED_BEYOND_SCHEMA, f"check refuses {path.name}: {exc.errors}"
    else:
        assert path.name not in REFUSED_BEYOND_SCHEMA, f"check now accepts {path.name}"
    assert errors_of(validator, yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("path", [*REFUSED, FIXTURES / "config" / "many_errors.yaml"],
                         ids=lambda p: p.name)
def test_what_check_refuses_for_schema_reasons_the_schema_refuses(validator, path):
    with pytest.raises(ConfigErrors):
        load_config(path, environ=CHILD_ENV)
    assert errors_of(validator, yaml.safe_load(path.read_text())), f"the schema accepts {path.name}"


def test_many_errors_are_all_seen_by_the_schema(validator):
    """Each schema mistake of many_errors.yaml, where check reports it."""
    doc = yaml.safe_load((FIXTURES / "config" / "many_errors.yaml").read_text())
    where = {e.split(":")[0] for e in errors_of(validator, doc)}
    assert {"supervisor.port", "supervisor.log", "services.backend.restart",
            "services.bot.restart.policy", "services.node.limits", "services.node.heartbeat",
            "services"} <= where


# --- the value kinds agree with the parsers they describe ---------------------------------

def kind_validator(printed: dict[str, Any], kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": printed["$defs"]})


def accepts(parse: Any, value: Any) -> bool:
    try:
        parse(value)
        return True
    except ValueError:
        return False


DURATIONS = [0, 5, 2.5, "10", "0.5", "1e3", "+5", "250ms", "10s", "1.5s", "5m", "1h", "1d", "1m30s",
             "1h0m5s", " 10s ", "10S", "0s", ".5s", "10MS", "10x", "s", "", "ten seconds", "5 m",
             "-1", -1, "-1s", "-250ms", "1.5.s", "ms", "10s5", True, None, [1], "1,5s"]
SIZES = [0, 512, "100", "512KB", "10MB", "1GB", "1GiB", "10 MB", "1kb", "2TiB", "1.5KB", "12XB",
         "-1MB", -1, "MB", "", "10M", "1 0MB", True, None]


@pytest.mark.parametrize("value", DURATIONS, ids=repr)
def test_a_duration_is_valid_exactly_when_parse_duration_takes_it(printed, value):
    valid = kind_validator(printed, "Duration").is_valid(value)
    assert valid == accepts(parse_duration, value)


@pytest.mark.parametrize("value", SIZES, ids=repr)
def test_a_size_is_valid_exactly_when_parse_size_takes_it(printed, value):
    valid = kind_validator(printed, "Size").is_valid(value)
    assert valid == accepts(parse_size, value)


@pytest.mark.parametrize("value, ok", [
    ("SIGTERM", True), ("TERM", True), ("term", True), ("sigkill", True), (" SIGINT ", True),
    (15, True), ("9", True), ("SIGFOO", False), ("FOO", False), ("", False), ("SIG", False),
    (True, False), (None, False)], ids=repr)
def test_a_signal_is_valid_as_the_loader_says(printed, value, ok):
    assert kind_validator(printed, "Signal").is_valid(value) is ok


@pytest.mark.parametrize("value", ["${STOP_TIMEOUT}", "${STOP_TIMEOUT:-5s}", "$STOP_TIMEOUT",
                                   "${STOP_TIMEOUT:?set it}"])
def test_an_interpolated_value_stands_for_any_kind(printed, value):
    for kind in ("Duration", "Size", "Signal"):
        assert kind_validator(printed, kind).is_valid(value), kind


def test_the_schema_command_needs_no_config(tmp_path):
    """Editors and CI call it anywhere: it reads no services.yaml and no .env."""
    out = subprocess.run([PY, str(START), "schema"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, check=False, env={**os.environ, "UNIFIED_CONFIG": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["title"] == "services.yaml of unified-system"
    assert not any(Path(tmp_path).iterdir())


def test_the_configuration_reference_is_current():
    """docs/configuration.md is generated from the schema's descriptions; a key added to the
    models (and described in keydocs) shows up there once the script is run again."""
    out = subprocess.run([PY, str(ROOT / "scripts" / "configuration_reference.py"), "--check"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr


def test_the_configuration_reference_has_a_row_for_every_key(printed):
    text = (ROOT / "docs" / "configuration.md").read_text()
    for model, body in printed["$defs"].items():
        for key, prop in body.get("properties", {}).items():
            assert f"| `{key}` |" in text and prop["description"].replace("|", "\\|") in text, \
                f"{model}.{key}"
