"""The pipeline: .env -> YAML -> overlay -> interpolate -> validate -> checks -> freeze.

Every error of one file is collected (each service is validated on its own so one bad
service hides nothing of another) and raised together as ConfigErrors.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from unified_system.config.checks import semantic_issues
from unified_system.config.envfile import EnvFileError, read_env_file
from unified_system.config.errors import ConfigError, ConfigErrors, Loc, dotted, hint
from unified_system.config.interpolate import interpolate_tree
from unified_system.config.schema import Config, Probe, Service, check_service_name
from unified_system.config.view import ConfigRecord, LoadedConfig, ProbeRecord, Record
from unified_system.config.yamlsrc import Source, apply_overlay, load_yaml

_SCALARS = (str, int, float, bool, type(None))


def config_path(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """-c/--config, else $UNIFIED_CONFIG, else ./services.yaml."""
    return Path(path or environ.get("UNIFIED_CONFIG") or "services.yaml")


class _Errors:
    def __init__(self, file: str, source: Source) -> None:
        self.file, self.source = file, source
        self.items: list[ConfigError] = []

    def add(self, loc: Loc, message: str, at_key: bool = False) -> None:
        _, (line, col) = self.source.locate(loc, at_key)
        self.items.append(ConfigError(self.file, line, col, dotted(loc), message, loc))


def load_config(path: str | os.PathLike[str] | None = None, env_name: str | None = None,
                environ: Mapping[str, str] | None = None, supervisor_only: bool = False
                ) -> LoadedConfig:
    """Load, validate and freeze services.yaml; raise ConfigErrors listing every problem.

    supervisor_only: just the `supervisor` section, with no services (what a client of the
    running supervisor needs to reach it); nothing else is interpolated or checked."""
    environ = os.environ if environ is None else environ
    given = config_path(path, environ)
    file, absolute = str(given), Path(os.path.abspath(given))
    try:
        text = absolute.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "file not found" if isinstance(exc, FileNotFoundError) else f"cannot read: {exc}"
        raise ConfigErrors([ConfigError(file, 0, 0, "", reason)]) from None
    base = absolute.parent
    try:
        merged = _environment(base, environ)
    except EnvFileError as exc:
        raise ConfigErrors([ConfigError(str(base / ".env"), 0, 0, "", f"cannot read: {exc.reason}")]) from None
    source = load_yaml(text, file)
    errors = _Errors(file, source)
    for loc, (line, col), message in source.problems:
        errors.items.append(ConfigError(file, line, col, dotted(loc), message, loc))
    if not isinstance(source.data, dict):
        errors.add((), "expected a mapping with 'services' at the top level")
        raise ConfigErrors(errors.items)
    source, chosen = _overlay(source, env_name, merged, errors)
    errors.source = source
    raw_envs = source.data.get("environments") or {}
    if isinstance(raw_envs, dict):  # an empty overlay (`staging:`) is an empty mapping
        raw_envs = {k: {} if v is None else v for k, v in raw_envs.items()}
    # Top-level `x-*` keys are compose-style extension fields: anchors for `<<: *defaults`.
    body = {k: v for k, v in source.data.items() if k != "environments" and not k.startswith("x-")}
    if supervisor_only:
        body = {**{k: body[k] for k in ("version", "supervisor") if k in body}, "services": {}}
    doc, failed = interpolate_tree(body, merged)
    config = _validate(doc, raw_envs, base, merged, errors)
    bad = [loc for loc, _ in failed]  # errors that only echo a failed ${VAR:?} are noise
    errors.items = [e for e in errors.items if not any(e.loc[:len(b)] == b for b in bad)]
    for loc, message in failed:
        errors.add(loc, message)
    if errors.items or config is None:
        raise ConfigErrors(errors.items)
    return LoadedConfig(absolute, base, chosen, types.MappingProxyType(merged), config, source)


def _environment(base: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The .env beside services.yaml, under what is already in the environment."""
    dotenv = base / ".env"
    values = read_env_file(dotenv) if dotenv.is_file() else {}
    return {**{k: v for k, v in values.items() if v is not None}, **environ}


def _overlay(source: Source, env_name: str | None, environ: Mapping[str, str],
             errors: _Errors) -> tuple[Source, str | None]:
    envs = source.data.get("environments") or {}
    if not isinstance(envs, dict):
        errors.add(("environments",), "expected a mapping of environment name to overlay")
        return source, None
    if env_name is not None and env_name not in envs:
        known = ", ".join(sorted(envs)) or "none defined"
        errors.add(("environments",) if envs else (),
                   f"unknown environment '{env_name}'{hint(env_name, envs)} (known: {known})")
        return source, None
    name = env_name if env_name is not None else environ.get("NODE_ENV")
    if name is None or name not in envs:  # $NODE_ENV without a matching overlay: no overlay
        return source, None
    if not isinstance(envs[name], dict):  # None: empty overlay; else reported by the schema
        return source, name
    return apply_overlay(source, ("environments", name)), name


def _validate(doc: dict[str, Any], raw_envs: Any, base: Path, environ: Mapping[str, str],
              errors: _Errors) -> Config | None:
    context = {"base_dir": base}
    shell: Config | None = None
    top = {k: v for k, v in doc.items() if k != "services"}
    try:  # everything but the services, which are validated one by one below
        shell = Config.model_validate({**top, "environments": raw_envs, "services": {}},
                                      context=context)
    except ValidationError as exc:
        _report(exc, Config, (), errors)
    raw = doc.get("services")
    if "services" not in doc:
        errors.add((), "missing required key 'services'")
    elif not isinstance(raw, dict):
        errors.add(("services",), f"expected a mapping of service name to service, got {raw!r}")
    services: dict[str, Service] = {}
    for name, body in (raw if isinstance(raw, dict) else {}).items():
        if problem := check_service_name(name):
            errors.add(("services", name), problem, at_key=True)
        try:
            services[name] = Service.model_validate(body, context=context)
        except ValidationError as exc:
            _report(exc, Service, ("services", name), errors)
    known = list(raw) if isinstance(raw, dict) else []
    for loc, message in semantic_issues(services, known, environ,
                                        shell.supervisor if shell else None):
        errors.add(loc, message)
    return shell.model_copy(update={"services": services}) if shell else None


def _report(exc: ValidationError, model: type[BaseModel], prefix: Loc, errors: _Errors) -> None:
    """pydantic errors -> ConfigErrors at the YAML node of each error's location."""
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if p != "[key]")
        kind, value = err["type"], err.get("input")
        at_key = False
        if kind == "extra_forbidden":
            key = str(loc[-1])
            message, at_key = f"unknown key '{key}'{hint(key, _fields_at(model, loc[:-1]))}", True
        elif kind == "missing":
            message = f"missing required key '{loc[-1]}'"
        elif kind == "value_error":
            message = str(err["ctx"]["error"])
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = f"expected a mapping, got {value!r}"
        else:
            message = err["msg"]
            if isinstance(value, _SCALARS):
                message += f", got {value!r}"
        errors.add(prefix + loc, message, at_key)


def _unwrap(tp: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        else:
            return tp


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys allowed at `loc` below `model` (for the did-you-mean of an unknown key)."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return []
            tp = tp.model_fields[part].annotation
        elif origin in (dict, tuple, list):
            tp = typing.get_args(tp)[-1 if origin is dict else 0]
        else:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def as_records(loaded: LoadedConfig) -> LoadedConfig:
    """The same config with every model turned into a Record (config/view.py), for the
    running supervisor, which never imports pydantic."""
    return LoadedConfig(loaded.path, loaded.base_dir, loaded.env_name, loaded.environ,
                        _record(loaded.config))


def _record(value: Any) -> Any:
    if isinstance(value, BaseModel):
        kind = ConfigRecord if isinstance(value, Config) else \
            ProbeRecord if isinstance(value, Probe) else Record
        return kind({name: _record(getattr(value, name)) for name in type(value).model_fields})
    if isinstance(value, dict):
        return {key: _record(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_record(item) for item in value)
    return value
