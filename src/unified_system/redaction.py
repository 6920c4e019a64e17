"""Secret values out of every output: text, structured answers and raw console bytes.

The rules (SPEC §6, "What is redacted, and where"):

- A value of `SHORT` characters or more is replaced wherever it appears, even inside a word.
- A shorter value (`abc12`, `x`) is replaced only where it stands as a whole token, that is
  where neither neighbour is a letter, a digit or `_`: hiding every `a` of every log line
  would destroy the logs, and a short secret inside a longer word gives little away.
- Structured answers are redacted before they are encoded, string by string. Scrubbing the
  encoded text missed any secret that the encoder escapes (`"`, `\\`, control characters,
  non-ASCII under `ensure_ascii`), and could break the JSON around a short secret.
- Text that someone else encoded (a child's JSON log line) is also searched for the JSON
  escapes of each value, with and without `ensure_ascii`.

One pass over the text, longest value first at each place: a secret that is a prefix of
another never leaves the longer one's tail behind, and nothing already replaced is searched
again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, AnyStr, Generic

SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
REDACTED = "***"
SHORT = 6                 # below this many characters: whole tokens only
_CACHED = 64              # strings up to this long keep their answer (names, states, ...)


def _forms(value: str) -> set[str]:
    """The value as written, as a JSON string's inside (ASCII-escaped and not), and each
    line of a multi-line value: line-based outputs (/logs, the console, a STATUS= cut at
    its newline) carry it in pieces."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    lines = [line for line in value.splitlines() if line.strip()]
    return forms | set(lines) if len(lines) > 1 else forms


class _Matcher(Generic[AnyStr]):
    """The forms of the secrets, as str or as UTF-8 bytes, longest first.

    Which forms a text holds is asked with `in` (a C substring search): most text holds
    none. Only those found go into a pattern (cached per set found). Each alternative starts
    with its literal, so the regex engine skips ahead to where one could start; the
    whole-token rule of a short form is checked after its literal, by a lookbehind as wide
    as the form plus the neighbour before it."""

    def __init__(self, forms: list[AnyStr], short: set[AnyStr], redacted: AnyStr,
                 bar: AnyStr) -> None:
        self.forms: list[AnyStr] = forms
        self.redacted: AnyStr = redacted
        self.bar: AnyStr = bar
        self._short: set[AnyStr] = short
        # Escaped when first found, not here: a supervisor with 100 services builds this
        # for 100 tokens at start, on the way to the first spawn (issue 20, third round).
        self._alternatives: dict[AnyStr, AnyStr] = {}
        self._patterns: dict[tuple[AnyStr, ...], re.Pattern[AnyStr]] = {}

    def _alternative(self, form: AnyStr) -> AnyStr:
        literal = self._alternatives.get(form)
        if literal is None:
            literal = re.escape(form)
            if form in self._short:   # the neighbour before the form, then none after it
                edges = rf"(?<!\w[\s\S]{{{len(form)}}})(?!\w)"
                literal += edges if isinstance(literal, str) else edges.encode()
            self._alternatives[form] = literal
        return literal

    def sub(self, text: AnyStr) -> AnyStr:
        present = tuple(f for f in self.forms if f in text)
        if not present:
            return text
        pattern = self._patterns.get(present)
        if pattern is None:
            if len(self._patterns) >= 256:
                self._patterns.clear()
            pattern = self._patterns[present] = re.compile(
                self.bar.join([self._alternative(f) for f in present]))
        return pattern.sub(self.redacted, text)


class Redactor:
    """Replaces known secret values by REDACTED. Immutable; build a new one on reload."""

    def __init__(self, values: Iterable[str]) -> None:
        secrets = {v for v in values if v}
        # Longest first, so a secret that starts with another is replaced whole. Ties in a
        # fixed order, for stable output.
        self.values: tuple[str, ...] = tuple(sorted(secrets, key=lambda v: (-len(v), v)))
        forms: dict[str, int] = {}
        for value in self.values:
            for form in _forms(value):
                # A form keeps its value's length class (`\"` of a 1-char `"` is still
                # short), and a line its own.
                size = len(form) if form in value.splitlines() else len(value)
                forms[form] = min(forms.get(form, size), size)
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        short = {f for f in ordered if forms[f] < SHORT}
        self._text = _Matcher(ordered, short, REDACTED, "|")
        encoded = sorted({f.encode() for f in ordered}, key=lambda f: (-len(f), f))
        self._bytes = _Matcher(encoded, {f.encode() for f in short}, REDACTED.encode(), b"|")
        self._answers: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, value: str) -> str:
        if not self.values:
            return value
        if len(value) > _CACHED:
            return self._text.sub(value)
        answer = self._answers.get(value)
        if answer is None:
            if len(self._answers) >= 4096:
                self._answers.clear()
            answer = self._answers[value] = self._text.sub(value)
        return answer

    def raw(self, data: bytes) -> bytes:
        """Bytes as a child wrote them (the console echo): the UTF-8 forms are searched."""
        return self._bytes.sub(data) if self.values else data

    def tree(self, value: Any) -> Any:
        """Every string in a JSON-like structure (keys too), before it is encoded. Other
        objects are turned into their text first, as json.dumps(default=str) would."""
        if not self.values:
            return value
        return self._tree(value)

    def _tree(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return self.text(value)
        if value is None or kind in _PLAIN:
            return value
        if kind is dict:
            return {(self.text(k) if type(k) is str else k):
                    (v if v is None or type(v) in _PLAIN else self._tree(v))
                    for k, v in value.items()}
        if isinstance(value, str):   # a str enum: encoded as its value, not its str()
            return self.text(str.__str__(value))
        if isinstance(value, (list, tuple)):
            return [self._tree(v) for v in value]
        if isinstance(value, dict):
            return self._tree(dict(value))
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        if isinstance(value, (bool, int, float)):   # subclasses: WrittenInt, IntEnum
            return value
        return self.text(str(value))


_PLAIN = frozenset({bool, int, float})
NOTHING = Redactor(())


def _env_file(path: str | os.PathLike[str]) -> Mapping[str, str | None]:
    from unified_system.config.envfile import EnvFileError, read_env_file

    try:
        return read_env_file(path)
    except EnvFileError:  # unreadable since the config was checked: its child got none either
        return {}


def secret_values(view: Any, api_key: str) -> list[str]:
    """What the supervisor knows to be secret: the API key, the heartbeat tokens, and every
    value of a secret-named variable (SECRET_NAME) in its own environment, the .env beside
    services.yaml, each service's `env` and `env_file`, whatever the value's length. `view`
    has `.runtime` (its `tokens`, `secrets`, `environ`), `.loaded` and `.config`: the
    adapter's view of itself (runtime.py) or the control plane's, never the owner."""
    values = [api_key, *view.runtime.tokens.values()]
    store = getattr(view.runtime, "secrets", None)
    if store is not None:   # generated `secrets:` values, whatever their variable's name
        values += [store.get(n) for svc in view.config.services.values()
                   for n in getattr(svc, "secrets", ())]
    loaded = getattr(view, "loaded", None)
    environs: list[Mapping[str, str | None]] = [getattr(view.runtime, "environ", os.environ)]
    if loaded is not None:
        environs.append(loaded.environ)  # with the .env beside services.yaml
    for svc in view.config.services.values():
        environs.append(svc.env)
        environs += map(_env_file, svc.env_file)
    for environ in environs:
        values += [str(v) for k, v in environ.items() if v is not None and SECRET_NAME.search(k)]
    return values
