"""Pure dependency-graph functions. `deps` maps a service to the services it depends on.

A dependency that is not itself a key of `deps` is treated as outside the graph (already
satisfied); the config checks report unknown names before any of this runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_MAX_CYCLES = 50  # elementary cycles can be exponential in number; a report needs a few


def _edges(deps: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    return {name: sorted({d for d in ds if d in deps}) for name, ds in deps.items()}


def start_waves(deps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Kahn layering: wave 1 has no dependencies, wave n+1 needs only waves 1..n.
    Raises ValueError naming a cycle if there is one."""
    edges = _edges(deps)
    waiting = {name: set(ds) for name, ds in edges.items()}
    waves: list[list[str]] = []
    while waiting:
        wave = sorted(name for name, ds in waiting.items() if not ds)
        if not wave:
            cycle = find_cycles({n: edges[n] for n in waiting})[0]
            raise ValueError("dependency cycle: " + " -> ".join(cycle + [cycle[0]]))
        waves.append(wave)
        for name in wave:
            del waiting[name]
        for ds in waiting.values():
            ds.difference_update(wave)
    return waves


def find_cycles(deps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every elementary cycle once, each starting at its smallest name: a -> b -> a is ['a', 'b'].
    A service depending on itself is ['a']."""
    edges = _edges(deps)
    cycles: list[list[str]] = []

    def walk(start: str, path: list[str]) -> None:
        for nxt in edges[path[-1]]:
            if len(cycles) >= _MAX_CYCLES:
                return
            if nxt == start:
                cycles.append(list(path))
            elif nxt > start and nxt not in path:  # smaller names were starts already
                walk(start, path + [nxt])

    for start in sorted(edges):
        walk(start, [start])
    return cycles


def dependents(deps: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Reverse edges: who depends on each service (every name appears, maybe with an empty set)."""
    out: dict[str, set[str]] = {name: set() for name in deps}
    for name, ds in deps.items():
        for dep in ds:
            out.setdefault(dep, set()).add(name)
    return out


def closure(deps: Mapping[str, Iterable[str]], names: Iterable[str]) -> set[str]:
    """`names` plus everything they transitively depend on (for `run --only a,b`)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(deps.get(name, ()))
    return seen


def describe_start_order(services: Mapping[str, Any]) -> str:
    """What `check` prints of a config's services: one line per wave, then the disabled ones.
    (Duck-typed: this module imports nothing of config/, which imports it.)"""
    enabled = {n: s for n, s in services.items() if s.enabled}
    deps = {n: [d for d in s.depends_on if d in enabled] for n, s in enabled.items()}
    lines = []
    for number, wave in enumerate(start_waves(deps), start=1):
        parts = []
        for name in wave:
            conds = [f"{d} {c.condition}" for d, c in sorted(enabled[name].depends_on.items())
                     if d in enabled]
            parts.append(f"{name} (after {', '.join(conds)})" if conds else name)
        lines.append(f"wave {number}: {', '.join(parts)}")
    disabled = sorted(n for n, s in services.items() if not s.enabled)
    if disabled:
        lines.append(f"disabled: {', '.join(disabled)}")
    return "\n".join(lines)


def heights(deps: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Length of the longest chain of dependents below each service (0 for a leaf)."""
    below = dependents(deps)
    memo: dict[str, int] = {}

    def height(name: str, seen: frozenset[str]) -> int:
        if name not in memo:
            kids = [k for k in below.get(name, ()) if k not in seen]
            memo[name] = 1 + max((height(k, seen | {name}) for k in kids), default=-1)
        return memo[name]

    return {name: height(name, frozenset()) for name in deps}


def spawn_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Start waves, flattened, with each wave's most-depended-upon services first: when a
    dependency becomes ready, the next link of the longest chain is spawned before leaves."""
    tall = heights(deps)
    return [n for wave in start_waves(deps) for n in sorted(wave, key=lambda n: (-tall[n], n))]
