"""YAML -> plain data, plus where each key and value sits so errors can name file:line:col.

Keys are kept as their source text (YAML 1.1 would turn a key `on` into True); values are
constructed by the safe loader. Paths are tuples of mapping keys (str) and list indexes (int).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

from unified_system.config.errors import ConfigError, ConfigErrors, Loc

Mark = tuple[int, int]  # 1-based line, column
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Source:
    """A parsed document: its data and the marks of every key and value."""

    data: Any
    key_marks: dict[Loc, Mark] = field(default_factory=dict)
    value_marks: dict[Loc, Mark] = field(default_factory=dict)
    problems: list[tuple[Loc, Mark, str]] = field(default_factory=list)

    def locate(self, loc: Loc, at_key: bool = False) -> tuple[Loc, Mark]:
        """The mark of `loc`, else of its longest known prefix.

        An error points at a scalar's value (`policy: >sometimes`), at a mapping's or list's
        key, and inside a scalar (a word of a command string) at that scalar.
        A name inside a list-form mapping (depends_on: [db]) is mapped to its index first.
        """
        loc = self._through_lists(loc)
        for end in range(len(loc), 0, -1):
            prefix = loc[:end]
            if prefix not in self.key_marks:
                continue
            try:
                node = self._node(prefix)
            except (KeyError, IndexError, TypeError):  # marks outlived their data: use the key
                node = {}
            if isinstance(node, (dict, list)) or (at_key and end == len(loc)):
                return loc, self.key_marks[prefix]
            return loc, self.value_marks[prefix]
        return loc, self.value_marks.get((), (1, 1))

    def _node(self, loc: Loc) -> Any:
        node = self.data
        for part in loc:
            node = node[part]
        return node

    def _through_lists(self, loc: Loc) -> Loc:
        node, out = self.data, []
        for part in loc:
            if isinstance(node, list) and isinstance(part, str) and part in node:
                part = node.index(part)
            out.append(part)
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = None
        return tuple(out)


# libyaml's parser, when present, is several times faster and gives the same marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MAX_DEPTH = 64
# Values built again through aliases, beyond their first build. A merge key (<<: *defaults)
# per service costs a few dozen; a "billion laughs" (nine aliases of nine aliases of ...)
# costs 9**9, and a 415-byte file once took `check` to 1.6 GB. Composing the node graph is
# linear in the text (libyaml keeps one node per anchor): only the expansion is capped.
MAX_ALIAS_VALUES = 10_000


class _AliasBomb(Exception):
    def __init__(self, mark: Mark) -> None:
        super().__init__(mark)
        self.mark = mark


@dataclass
class _Expansion:
    """The nodes built once, and how many values aliases have built again."""

    built: set[int] = field(default_factory=set)
    again: int = 0


def _mark(mark: yaml.Mark) -> Mark:
    return mark.line + 1, mark.column + 1


def load_yaml(text: str, file: str) -> Source:
    """Parse one YAML document; a syntax error raises ConfigErrors with its line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        source = Source(None)
        if node is not None:
            source.value_marks[()] = _mark(node.start_mark)
            source.data = _build(loader, node, (), source, set(), _Expansion())
        return source
    except _AliasBomb as bomb:
        line, col = bomb.mark
        raise ConfigErrors([ConfigError(
            file, line, col, "", f"YAML aliases here expand to more than {MAX_ALIAS_VALUES} "
            "values: refused (a 'billion laughs'?); write the values out, or use fewer "
            "nested aliases")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _mark(mark) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigErrors([ConfigError(file, line, col, "", f"YAML syntax error: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigErrors([ConfigError(file, 0, 0, "", f"YAML error: {exc}")]) from None
    except RecursionError:  # no services.yaml nests hundreds of levels deep
        raise ConfigErrors([ConfigError(file, 0, 0, "", "YAML nested too deeply")]) from None
    finally:
        loader.dispose()


class WrittenInt(int):
    """A YAML 1.1 number whose text says more than its value (0755 is 493, 12:30 is 750,
    1_000 is 1000): where a string is wanted (argv, env) the text as written is used."""

    written: str


class WrittenFloat(float):
    written: str


def _number(value: Any, text: str) -> Any:
    kind = WrittenInt if type(value) is int else WrittenFloat if type(value) is float else None
    if kind is None or str(value) == text:
        return value
    number = kind(value)
    number.written = text
    return number


def _where(loc: Loc, src: Source, node: yaml.Node) -> Mark:
    """The deepest mapping key on the way: an aliased node's own mark (and so a list item's)
    is its anchor's, wherever the alias was written."""
    for end in range(len(loc), 0, -1):
        if isinstance(loc[end - 1], str) and loc[:end] in src.key_marks:
            return src.key_marks[loc[:end]]
    return _mark(node.start_mark)


def _build(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, src: Source,
           active: set[int], expansion: _Expansion) -> Any:
    if id(node) in expansion.built:   # reached again, through an alias
        expansion.again += 1
        if expansion.again > MAX_ALIAS_VALUES:
            raise _AliasBomb(_where(loc, src, node))
    else:
        expansion.built.add(id(node))
    if id(node) in active:  # an alias of its own ancestor would recurse forever
        src.problems.append((loc, _mark(node.start_mark), "recursive YAML alias"))
        return None
    if len(loc) > MAX_DEPTH:  # what reads the tree after this recurses too
        src.problems.append((loc[:MAX_DEPTH], _mark(node.start_mark),
                             f"nested more than {MAX_DEPTH} levels deep"))
        return None
    if isinstance(node, yaml.ScalarNode):
        return _number(loader.construct_object(node, deep=True), node.value)
    active = active | {id(node)}
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            src.key_marks[loc + (i,)] = src.value_marks[loc + (i,)] = _mark(item.start_mark)
            items.append(_build(loader, item, loc + (i,), src, active, expansion))
        return items
    if not isinstance(node, yaml.MappingNode):  # scalar, sequence and mapping are all there are
        raise TypeError(f"unexpected YAML node {type(node).__name__}")
    seen: dict[str, Mark] = {}
    for key_node, _ in node.value:  # duplicates, before merge keys (<<) legitimately repeat
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        here = _mark(key_node.start_mark)
        if key_node.value in seen:
            src.problems.append((loc + (key_node.value,), here,
                                 f"duplicate key '{key_node.value}' (first at line "
                                 f"{seen[key_node.value][0]})"))
        seen.setdefault(key_node.value, here)
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            src.problems.append((loc, _mark(key_node.start_mark), "keys must be plain strings"))
            continue
        key = key_node.value
        src.key_marks[loc + (key,)] = _mark(key_node.start_mark)
        src.value_marks[loc + (key,)] = _mark(value_node.start_mark)
        out[key] = _build(loader, value_node, loc + (key,), src, active, expansion)
    return out


def apply_overlay(src: Source, overlay_loc: Loc) -> Source:
    """Deep-merge the mapping at `overlay_loc` over the document (mappings merge, the rest
    replaces). Marks of what the overlay brought point into the overlay."""
    over = src.data
    for part in overlay_loc:
        over = over[part]
    out = Source(copy.deepcopy(src.data), dict(src.key_marks), dict(src.value_marks),
                 list(src.problems))
    replaced: list[Loc] = []

    def merge(base: dict[str, Any], top: dict[str, Any], loc: Loc) -> None:
        for key, value in top.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value, loc + (key,))
            else:
                base[key] = copy.deepcopy(value)
                replaced.append(loc + (key,))

    merge(out.data, over, ())
    n = len(overlay_loc)
    for marks, own in ((out.key_marks, src.key_marks), (out.value_marks, src.value_marks)):
        for loc in [m for m in marks if any(m[:len(r)] == r for r in replaced)]:
            del marks[loc]
        for loc, mark in own.items():
            rest = loc[n:]
            if loc[:n] == overlay_loc and any(rest[:len(r)] == r for r in replaced):
                marks[rest] = mark
    return out
