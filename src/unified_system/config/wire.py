"""The config child's answer on the wire: records, paths and errors in `marshal` form.

`marshal` is built into the interpreter, so the resident supervisor imports nothing to read
the answer; pickle (with _pickle and _compat_pickle) was 0.44 MB of its idle RSS (issue 20,
bench/RESULTS.md "Footprint, third round"). Like pickle it is for trusted input only: both
ends are this program (a forked child, or the reload helper it starts).

Every value is turned into something marshal carries; containers that the config holds
(records, tuples, lists, paths, errors) become a list whose first item names the kind, so
none can be mistaken for another. A value of any other type raises TypeError when sent.
"""

from __future__ import annotations

import marshal
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import Any

from unified_system.config.errors import ConfigError
from unified_system.config.view import ConfigRecord, LoadedConfig, ProbeRecord, Record

_RECORDS: dict[str, type[Record]] = {"R": Record, "C": ConfigRecord, "P": ProbeRecord}
_KIND = {cls: kind for kind, cls in _RECORDS.items()}
_PLAIN = (str, int, float, bool, bytes, type(None))


def dumps(value: Any) -> bytes:
    return marshal.dumps(_out(value))


def loads(data: bytes) -> Any:
    return _in(marshal.loads(data))


def _out(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {key: _out(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return ["t", *map(_out, value)]
    if isinstance(value, list):
        return ["l", *map(_out, value)]
    if isinstance(value, Record):
        return [_KIND[type(value)], _out(value.fields())]
    if isinstance(value, PurePath):
        return ["p", str(value)]
    if isinstance(value, ConfigError):
        return ["e", value.file, value.line, value.column, value.path, value.message,
                _out(value.loc)]
    if isinstance(value, LoadedConfig):
        return ["L", str(value.path), str(value.base_dir), value.env_name,
                dict(value.environ), _out(value.config)]
    raise TypeError(f"the config's wire carries no {type(value).__name__}: {value!r}")


def _in(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _in(item) for key, item in value.items()}
    if not isinstance(value, list):
        return value
    kind, rest = value[0], value[1:]
    if kind == "t":
        return tuple(map(_in, rest))
    if kind == "l":
        return [_in(item) for item in rest]
    if kind == "p":
        return Path(rest[0])
    if kind == "e":
        file, line, column, path, message, loc = rest
        return ConfigError(file, line, column, path, message, _in(loc))
    if kind == "L":
        path, base_dir, env_name, environ, config = rest
        return LoadedConfig(Path(path), Path(base_dir), env_name, MappingProxyType(environ),
                            _in(config))
    return _RECORDS[kind](_in(rest[0]))
