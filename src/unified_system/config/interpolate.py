"""docker compose style interpolation: $VAR ${VAR} ${VAR:-d} ${VAR-d} ${VAR:?msg} ${VAR?msg} $$.

Also the compose forms ${VAR:+alt} / ${VAR+alt}. Defaults may themselves hold ${...}; they are
expanded only when used, so a `:?` inside a default fires only when the default is needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from unified_system.config.errors import Loc

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_BRACED = re.compile(r"([_A-Za-z][_A-Za-z0-9]*)(?:(:?[-?+])(.*))?", re.DOTALL)


class InterpolationError(ValueError):
    """A `${VAR:?msg}` whose variable is missing, or a malformed `${...}`."""


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Expand every reference in `text`. An unset variable without a default is ''."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise InterpolationError(f"invalid interpolation: unclosed '${{' in {text!r}")
            out.append(_braced(text[i + 2:end], environ))
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            out.append(environ.get(match.group(), ""))
            i = match.end()
        else:  # '$' followed by anything else is literal, as in compose
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the '}' closing a '${' whose body starts at `start`; nested ${...} allowed."""
    depth, j = 1, start
    while j < len(text):
        if text.startswith("$$", j):
            j += 2
            continue
        if text.startswith("${", j):
            depth, j = depth + 1, j + 2
            continue
        if text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def _braced(body: str, environ: Mapping[str, str]) -> str:
    match = _BRACED.fullmatch(body)
    if not match:
        raise InterpolationError(f"invalid interpolation format for '${{{body}}}'")
    name, op, arg = match.group(1), match.group(2), match.group(3) or ""
    value = environ.get(name)
    is_set = value is not None
    non_empty = bool(value)
    if op is None:
        return value or ""
    if op in (":-", "-"):
        use_value = non_empty if op == ":-" else is_set
        return value if use_value else interpolate(arg, environ)  # type: ignore[return-value]
    if op in (":?", "?"):
        if non_empty if op == ":?" else is_set:
            return value  # type: ignore[return-value]
        message = interpolate(arg, environ)
        what = "missing a value" if op == ":?" else "not set"
        raise InterpolationError(f"required variable {name} is {what}"
                                 + (f": {message}" if message else ""))
    # ':+' / '+': the alternative when set, else nothing
    return interpolate(arg, environ) if (non_empty if op == ":+" else is_set) else ""


def interpolate_tree(data: Any, environ: Mapping[str, str],
                     loc: Loc = ()) -> tuple[Any, list[tuple[Loc, str]]]:
    """Interpolate every string value (never a key) of a YAML tree; collect every error."""
    errors: list[tuple[Loc, str]] = []

    def walk(node: Any, here: Loc) -> Any:
        if isinstance(node, str):
            try:
                return interpolate(node, environ)
            except InterpolationError as exc:
                errors.append((here, str(exc)))
                return node
        if isinstance(node, dict):
            return {k: walk(v, here + (k,)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, here + (i,)) for i, v in enumerate(node)]
        return node

    return walk(data, loc), errors
