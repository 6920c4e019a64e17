"""The dependency graph: waves, cycles, reverse edges, closure; fixtures named by shape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unified_system.config import load_config
from unified_system.graph import closure, dependents, describe_start_order, find_cycles, start_waves

FIXTURES = Path(__file__).parent / "fixtures" / "config"
ENV = {"PATH": os.environ.get("PATH", os.defpath)}


def deps_of(fixture: str) -> dict[str, list[str]]:
    config = load_config(FIXTURES / fixture, environ=ENV).config
    return {name: list(svc.depends_on) for name, svc in config.services.items()}


@pytest.mark.parametrize("deps, waves", [
    ({}, []),
    ({"a": []}, [["a"]]),
    ({"b": [], "a": [], "c": []}, [["a", "b", "c"]]),
    ({"c": ["b"], "b": ["a"], "a": []}, [["a"], ["b"], ["c"]]),
    ({"web": ["api", "worker"], "api": ["db"], "worker": ["db"], "db": []},
     [["db"], ["api", "worker"], ["web"]]),
    ({"x": ["a", "c"], "c": ["b"], "b": [], "a": []}, [["a", "b"], ["c"], ["x"]]),
    ({"a": ["external"]}, [["a"]]),  # a name outside the graph counts as satisfied
    ({"a": ["b", "b"], "b": []}, [["b"], ["a"]]),
])
def test_start_waves(deps, waves):
    assert start_waves(deps) == waves


@pytest.mark.parametrize("deps, message", [
    ({"a": ["a"]}, "dependency cycle: a -> a"),
    ({"a": ["b"], "b": ["a"], "c": []}, "dependency cycle: a -> b -> a"),
    ({"z": [], "a": ["b"], "b": ["c"], "c": ["b"]}, "dependency cycle: b -> c -> b"),
])
def test_start_waves_refuses_a_cycle(deps, message):
    with pytest.raises(ValueError, match=message):
        start_waves(deps)


@pytest.mark.parametrize("deps, cycles", [
    ({"a": [], "b": ["a"]}, []),
    ({"a": ["a"]}, [["a"]]),
    ({"a": ["b"], "b": ["c"], "c": ["a"]}, [["a", "b", "c"]]),
    ({"c": ["a"], "b": ["c"], "a": ["b"]}, [["a", "b", "c"]]),  # named from its smallest member
    ({"a": ["b"], "b": ["a", "c"], "c": ["b"]}, [["a", "b"], ["b", "c"]]),
    ({"a": ["b", "c"], "b": ["a"], "c": ["a"]}, [["a", "b"], ["a", "c"]]),
    ({"a": ["missing"]}, []),
])
def test_find_cycles(deps, cycles):
    assert find_cycles(deps) == cycles


def test_dependents_and_closure():
    deps = {"web": ["api", "worker"], "api": ["db"], "worker": ["db"], "db": [], "lone": []}
    assert dependents(deps) == {"web": set(), "api": {"web"}, "worker": {"web"},
                                "db": {"api", "worker"}, "lone": set()}
    assert closure(deps, ["web"]) == {"web", "api", "worker", "db"}
    assert closure(deps, ["api", "lone"]) == {"api", "db", "lone"}
    assert closure(deps, []) == set()


def test_chain_fixture():
    deps = deps_of("chain.yaml")
    assert start_waves(deps) == [["db"], ["api"], ["web"]]
    assert closure(deps, ["api"]) == {"api", "db"}
    assert dependents(deps)["db"] == {"api"}


def test_diamond_fixture():
    deps = deps_of("diamond.yaml")
    assert start_waves(deps) == [["db"], ["api", "worker"], ["web"]]
    assert dependents(deps)["db"] == {"api", "worker"}
    assert find_cycles(deps) == []


def test_fanout_fixture():
    deps = deps_of("fanout.yaml")
    assert start_waves(deps) == [["backend"], ["bot", "migrate", "node"], ["frontend"]]
    assert dependents(deps)["backend"] == {"bot", "node", "migrate"}


def test_cycle_fixture():
    import yaml  # the fixture does not load (that is its point); read its edges directly
    raw = yaml.safe_load((FIXTURES / "cycle.yaml").read_text())["services"]
    deps = {name: svc["depends_on"] for name, svc in raw.items()}
    assert find_cycles(deps) == [["a", "b", "c"], ["selfish"]]
    with pytest.raises(ValueError, match="cycle"):
        start_waves(deps)


@pytest.mark.parametrize("fixture, text", [
    ("chain.yaml", "wave 1: db\nwave 2: api (after db started)\nwave 3: web (after api healthy)"),
    ("diamond.yaml", "wave 1: db\nwave 2: api (after db healthy), worker (after db healthy)\n"
                     "wave 3: web (after api started, worker started)"),
    ("fanout.yaml", "wave 1: backend\n"
                    "wave 2: bot (after backend healthy), migrate (after backend started), "
                    "node (after backend healthy)\ndisabled: frontend"),
])
def test_describe_start_order(fixture, text):
    assert describe_start_order(load_config(FIXTURES / fixture, environ=ENV).config.services) == text


def test_spawn_order_puts_the_longest_chain_first_within_a_wave():
    from unified_system.graph import heights, spawn_order

    deps = {"c0": [], "c1": ["c0"], "c2": ["c1"], "c0-leaf": ["c0"], "a-leaf": ["c0"]}
    assert heights(deps) == {"c0": 2, "c1": 1, "c2": 0, "c0-leaf": 0, "a-leaf": 0}
    assert spawn_order(deps) == ["c0", "c1", "a-leaf", "c0-leaf", "c2"]
