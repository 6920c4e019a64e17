"""docs/SPEC.md names every key, command and route the code has: one added without a word in
the contract fails here."""

from __future__ import annotations

import argparse
import re

import pytest

from harness import ROOT
from unified_system.api.routes import ROUTES
from unified_system.cli import _parser
from unified_system.config.jsonschema import services_schema

SPEC = (ROOT / "docs" / "SPEC.md").read_text()


def keys() -> list[str]:
    schema = services_schema()
    found = set(schema["properties"])
    for body in schema["$defs"].values():
        found |= set(body.get("properties", {}))
    return sorted(found)


def commands() -> list[str]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


@pytest.mark.parametrize("key", keys())
def test_every_config_key_is_in_the_spec(key):
    assert re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", SPEC), f"docs/SPEC.md never names {key}"


@pytest.mark.parametrize("command", commands())
def test_every_command_is_in_the_spec(command):
    assert f"`{command}" in SPEC or f"/ {command}" in SPEC, f"docs/SPEC.md §5 lacks {command}"


@pytest.mark.parametrize("path, methods", [(p, m) for p, _rid, m in ROUTES])
def test_every_route_is_in_the_spec(path, methods):
    head, _, last = path.rpartition("/")
    rows = [line for line in SPEC.splitlines() if any(f"{m} " in line for m in methods)]
    assert any(path in row or (head in row and f"/{last}" in row) for row in rows), \
        f"docs/SPEC.md §6 lacks {'/'.join(methods)} {path}"


def test_the_spec_names_its_companions():
    for name in ("configuration.md", "services.schema.json", "openapi.yaml"):
        assert f"({name})" in SPEC
