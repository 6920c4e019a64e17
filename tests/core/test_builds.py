"""Builds on the fake: a build whose spawn finds descriptors scarce is tried again, not
failed; a build that fails leaves the service fatal with the reason."""

from core.fakes import Owner
from unified_system.core.events import BuildDone

BUILT = """
services:
  app:
    command: ["sleep", "1000"]
    build: {command: ["make"], timeout: 60s}
"""


def _hash_inputs(o: Owner) -> None:
    """Run the worker's jobs (input hashing), which post BuildDone, and the turn after."""
    while o.fx.jobs:
        o.fx.jobs.pop(0)()
    o.turn()


def _build_ends(o: Owner, ok: bool) -> None:
    run = o.sup.builds._build_runs["app"]
    o.turn(BuildDone("app", ok, "exit 0" if ok else "exit 2", "digest", False, run.number))


def test_a_build_spawn_that_finds_descriptors_scarce_is_retried_not_failed(tmp_path):
    o = Owner(tmp_path, BUILT)
    o.fx.scarce_builds = 3
    _hash_inputs(o)
    assert o.state("app") == "building"
    assert not [d for d in o.fx.did if d[0] == "build"]
    o.advance(10)                              # three scarce tries on the short backoff, then it runs
    assert o.state("app") == "building" and len([d for d in o.fx.did if d[0] == "build"]) == 1
    _build_ends(o, ok=True)
    assert o.state("app") == "running" and len(o.fx.spawns("app")) == 1


def test_a_failed_build_leaves_the_service_fatal_with_the_reason(tmp_path):
    o = Owner(tmp_path, BUILT)
    _hash_inputs(o)
    _build_ends(o, ok=False)
    assert o.state("app") == "fatal" and "build failed: exit 2" in o.unit("app").note
    assert not o.fx.spawns("app")
