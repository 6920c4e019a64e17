"""Secret values out of every output: text, structured answers and raw console bytes.

The rules (SPEC §6, "What is redacted, and where"):

- A value of `SHORT` characters or more is replaced wherever it appears, even inside a word.
- A shorter value (`abc12`, `x`) is replaced only where it stands as a whole token, that is
  where neither neighbour is a letter, a digit or `_` (`\\w`): hiding every `a` of every log line
  would destroy the logs, and a short secret inside a longer word gives little away.
- Structured answers are redacted before they are encoded, string by string. Scrubbing the
  encoded text missed any secret that the encoder escapes (`"`, `\\`, control characters,
  non-ASCII under `ensure_ascii`), and could break the JSON around a short secret.
- Text that someone else encoded (a child's JSON log line) is also searched for the JSON
  escapes of each value, with and without `ensure_ascii`.

All values go into one regular expression, longest alternative first, applied in one pass:
a secret that is a prefix of another never leaves the longer one's tail behind, and nothing
already replaced is searched again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
REDACTED = "***"
SHORT = 6                 # below this many characters: whole tokens only
_WORD_BEFORE = r"(?<!\w)"      # \w: Unicode for text, ASCII for raw bytes
_WORD_AFTER = r"(?!\w)"


def _forms(value: str) -> set[str]:
    """The value as written, as a JSON string's inside (ASCII-escaped and not), and each
    line of a multi-line value: line-based outputs (/logs, the console, a STATUS= cut at
    its newline) carry it in pieces."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    lines = [line for line in value.splitlines() if line.strip()]
    return forms | set(lines) if len(lines) > 1 else forms


class Redactor:
    """Replaces known secret values by REDACTED. Immutable; build a new one on reload."""

    def __init__(self, values: Iterable[str]) -> None:
        secrets = {v for v in values if v}
        # The order the alternation tries them in: longest first, so a secret that starts
        # with another is replaced whole. Ties in a fixed order, for stable output.
        self.values: tuple[str, ...] = tuple(sorted(secrets, key=lambda v: (-len(v), v)))
        forms: dict[str, int] = {}
        for value in self.values:
            for form in _forms(value):
                # A form keeps its value's length class (`\"` of a 1-char `"` is still
                # short), and a line its own.
                size = len(form) if form in value.splitlines() else len(value)
                forms[form] = min(forms.get(form, size), size)
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self._text = re.compile(self._alternation(ordered, forms)) if ordered else None
        self._bytes = (re.compile(self._alternation(ordered, forms).encode(), re.ASCII)
                       if ordered else None)

    @staticmethod
    def _alternation(forms: list[str], lengths: dict[str, int]) -> str:
        parts = []
        for form in forms:
            escaped = re.escape(form)
            whole_token = lengths[form] < SHORT
            parts.append(_WORD_BEFORE + escaped + _WORD_AFTER if whole_token else escaped)
        return "|".join(parts)

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, value: str) -> str:
        if self._text is None:
            return value
        return self._text.sub(REDACTED, value)

    def raw(self, data: bytes) -> bytes:
        """Bytes as a child wrote them (the console echo): the UTF-8 forms are searched."""
        if self._bytes is None:
            return data
        return self._bytes.sub(REDACTED.encode(), data)

    def tree(self, value: Any) -> Any:
        """Every string in a JSON-like structure (keys too), before it is encoded. Other
        objects are turned into their text first, as json.dumps(default=str) would."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, dict):
            return {(self.text(k) if isinstance(k, str) else k): self.tree(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.tree(v) for v in value]
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        return self.text(str(value))


NOTHING = Redactor(())


def _env_file(path: str | os.PathLike[str]) -> Mapping[str, str | None]:
    from unified_system.config.envfile import EnvFileError, read_env_file

    try:
        return read_env_file(path)
    except EnvFileError:  # unreadable since the config was checked: its child got none either
        return {}


def secret_values(sup: Any, api_key: str) -> list[str]:
    """What the supervisor knows to be secret: the API key, the heartbeat tokens, and every
    value of a secret-named variable (SECRET_NAME) in its own environment, the .env beside
    services.yaml, each service's `env` and `env_file`, whatever the value's length."""
    values = [api_key, *sup.runtime.tokens.values()]
    loaded = getattr(sup, "loaded", None)
    environs: list[Mapping[str, str | None]] = [getattr(sup.runtime, "environ", os.environ)]
    if loaded is not None:
        environs.append(loaded.environ)  # with the .env beside services.yaml
    for svc in sup.config.services.values():
        environs.append(svc.env)
        environs += map(_env_file, svc.env_file)
    for environ in environs:
        values += [str(v) for k, v in environ.items() if v is not None and SECRET_NAME.search(k)]
    return values
