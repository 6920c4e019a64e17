"""The validated config as the running supervisor holds it: plain immutable records.

`run` validates services.yaml with pydantic in a short-lived process (config/apart.py) and
keeps only this copy, so the long-lived supervisor never imports pydantic (about 10 MB of
its idle RSS). A Record reads like the model it was made from: same attribute names, same
values (Path, tuple, dict), equal when the models were equal.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROBE_KINDS = ("http", "tcp", "exec")


def probe_kind(probe: Any) -> str:
    """http / tcp / exec / notify: the one check a probe carries."""
    for name in PROBE_KINDS:
        if getattr(probe, name) is not None:
            return name
    return "notify"


def enabled_services(config: Any) -> dict[str, Any]:
    return {name: svc for name, svc in config.services.items() if svc.enabled}


class Record:
    """A frozen bag of fields with attribute access; `replace` makes a changed copy."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields == other._fields

    __hash__ = None  # type: ignore[assignment]  # fields hold dicts, as the models do

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._fields,)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"{type(self).__name__}({inner})"

    def replace(self, **changes: Any) -> Record:
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise AttributeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        return type(self)({**self._fields, **changes})

    def fields(self) -> dict[str, Any]:
        return dict(self._fields)


class ProbeRecord(Record):
    __slots__ = ()

    @property
    def kind(self) -> str:
        return probe_kind(self)


class ConfigRecord(Record):
    __slots__ = ()

    def enabled(self) -> dict[str, Any]:
        return enabled_services(self)


def replace(obj: Any, **changes: Any) -> Any:
    """A changed copy of a Record or of the pydantic model it mirrors."""
    if isinstance(obj, Record):
        return obj.replace(**changes)
    return obj.model_copy(update=changes)


@dataclass(frozen=True)
class LoadedConfig:
    path: Path  # absolute
    base_dir: Path  # the directory of services.yaml; relative paths resolve against it
    env_name: str | None  # the environments overlay applied, if any
    environ: Mapping[str, str]  # .env under the process environment: what ${VAR} saw
    config: Any  # schema.Config, or its ConfigRecord copy in the running supervisor
    # Where each key sits, for errors found later (busy ports); not part of the value.
    source: Any = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # environ is a read-only proxy, which pickle refuses; the YAML source stays behind
        return _loaded, (self.path, self.base_dir, self.env_name, dict(self.environ), self.config)


def _loaded(path: Path, base_dir: Path, env_name: str | None, environ: dict[str, str],
            config: Any) -> LoadedConfig:
    return LoadedConfig(path, base_dir, env_name, types.MappingProxyType(environ), config)
