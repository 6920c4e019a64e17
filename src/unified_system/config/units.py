"""Scalar value types of the schema: durations ("250ms", "5m", "1m30s") as float seconds,
sizes ("10MB", "1GiB") as int bytes, argv (a string is split like a shell would), signal
names, and env values."""

from __future__ import annotations

import math
import re
import shlex
import signal as _signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

if TYPE_CHECKING:
    from pydantic import GetJsonSchemaHandler
    from pydantic_core import CoreSchema

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_NUMBER = re.compile(r"[+-]?(\d+(?:\.\d*)?|\.\d+)([eE][+-]?\d+)?")

_SIZE_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)")


# --- JSON Schema: what a user may write, which is more than the type validated into ------

def any_case(word: str) -> str:
    """A regex matching `word` in any case (JSON Schema patterns take no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


_NUMBER_TEXT = r"\+?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
_AMOUNT = r"(\d+(\.\d*)?|\.\d+)"
_DURATION_UNIT = "|".join(map(any_case, sorted(_DURATION_UNITS, key=len, reverse=True)))
DURATION_PATTERN = rf"^\s*({_NUMBER_TEXT}|({_AMOUNT}({_DURATION_UNIT}))+)\s*$"
SIZE_PATTERN = (rf"^\s*({_NUMBER_TEXT}|{_AMOUNT}\s*({'|'.join(map(any_case, _SIZE_UNITS))}))\s*$")
SIGNAL_NAMES = tuple(sorted({s.name for s in _signal.Signals}))
SIGNAL_PATTERN = (rf"^\s*(\d+|({any_case('SIG')})?"
                  rf"({'|'.join(any_case(n[3:]) for n in SIGNAL_NAMES)}))\s*$")


class JsonForms:
    """The JSON Schema of a value: `kind` names it (config/jsonschema.py makes it a $defs
    entry), and `forms` turns the validated type's own schema into every spelling a user
    may write."""

    def __init__(self, kind: str, forms: Callable[[dict[str, Any]], list[dict[str, Any]]],
                 description: str) -> None:
        self.kind, self.forms, self.description = kind, forms, description

    def __get_pydantic_json_schema__(self, core: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"anyOf": self.forms(handler(core)), "x-kind": self.kind,
                "x-kind-description": self.description}


def _number(value: Any) -> float | None:
    """A plain number (or a numeric string, as interpolation yields); None when it is not one."""
    if isinstance(value, bool):  # bool is an int in Python; `timeout: yes` is a mistake
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value.strip())
    return None


def parse_duration(value: Any) -> float:
    """Seconds from a number or '250ms' / '10s' / '5m' / '1h' / '1m30s'. Raises ValueError."""
    seconds = _number(value)
    if seconds is None and isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("-") and _DURATION_PART.fullmatch(text[1:] or "x"):
            raise ValueError(f"duration must not be negative, got {value!r}")
        parts = _DURATION_PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if seconds is None:
        raise ValueError(f"invalid duration {value!r}: use seconds or a number with a unit "
                         f"ms, s, m, h (e.g. '250ms', '10s', '5m')")
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be finite, got {value!r}")
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from a number or '512KB' / '10MB' / '1GB' (x1000) / 'KiB' 'MiB' 'GiB' (x1024)."""
    amount = _number(value)
    if amount is None and isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("-") and _SIZE.fullmatch(text[1:]):
            raise ValueError(f"size must not be negative, got {value!r}")
        match = _SIZE.fullmatch(text)
        if match and match.group(2) in _SIZE_UNITS:
            amount = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if amount is None:
        raise ValueError(f"invalid size {value!r}: use bytes or a number with a unit "
                         f"B, KB, MB, GB (x1000) or KiB, MiB, GiB (x1024)")
    if not math.isfinite(amount):
        raise ValueError(f"size must be finite, got {value!r}")
    if amount < 0:
        raise ValueError(f"size must not be negative, got {value!r}")
    if amount != int(amount):
        raise ValueError(f"size must be a whole number of bytes, got {value!r}")
    return int(amount)


def as_written(value: Any) -> Any:
    """A number as the file wrote it (chmod 0755 stays 0755; see yamlsrc.WrittenInt)."""
    return getattr(value, "written", value)


def _argv(value: Any) -> Any:
    """A command string is split as a shell would split it; it is never run by a shell."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command {value!r}: {exc}") from None
    if isinstance(value, (list, tuple)):
        return [as_written(item) for item in value]
    return value


def _non_empty_argv0(value: tuple[str, ...]) -> tuple[str, ...]:
    if value and not value[0]:
        raise ValueError("the program (first word of the command) is empty")
    return value


Argv = Annotated[tuple[str, ...], BeforeValidator(_argv), Field(min_length=1),
                 AfterValidator(_non_empty_argv0), JsonForms(
    "Argv", lambda s: [{"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}},
                       {"type": "string", "pattern": r"\S"}],
    "the program and its arguments: a list, or a string split as a shell would split it "
    "(never run by a shell)")]


def _signal_name(value: Any) -> Any:
    """'TERM', 'sigterm', 'SIGTERM' or 15 -> 'SIGTERM'; anything else is an error."""
    if isinstance(value, bool):
        raise ValueError(f"unknown signal {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        try:
            return _signal.Signals(value).name
        except ValueError:
            raise ValueError(f"unknown signal number {value}") from None
    if isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in _signal.Signals.__members__:
            return _signal.Signals[name].name  # folds aliases (SIGIOT -> SIGABRT)
        raise ValueError(f"unknown signal {value!r}")
    return value


def _env_value(value: Any) -> Any:
    # YAML turns `DEBUG: true` into a bool; the child needs the text a shell user expects.
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        raise ValueError('null value: write "" for an empty variable')
    return as_written(value)


EnvValue = Annotated[str, BeforeValidator(_env_value), JsonForms(
    "EnvValue", lambda s: [s, {"type": "number"}, {"type": "boolean"}],
    "text; a number or a boolean is passed as written (true -> 'true')")]


Duration = Annotated[float, BeforeValidator(parse_duration), JsonForms(
    "Duration", lambda s: [{**s, "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}],
    "seconds, or a number with a unit: '250ms', '10s', '5m', '1h', '1d', '1m30s'")]
Size = Annotated[int, BeforeValidator(parse_size), JsonForms(
    "Size", lambda s: [{**s, "minimum": 0}, {"type": "string", "pattern": SIZE_PATTERN}],
    "bytes, or a number with a unit: '512KB', '10MB', '1GB' (x1000) or 'KiB', 'MiB', 'GiB' (x1024)")]
SignalName = Annotated[str, BeforeValidator(_signal_name), JsonForms(
    "Signal", lambda s: [{"enum": list(SIGNAL_NAMES)}, {"type": "string", "pattern": SIGNAL_PATTERN},
                         {"type": "integer", "minimum": 1, "maximum": 64}],
    "a signal name ('SIGTERM', 'TERM', 'term') or number")]
