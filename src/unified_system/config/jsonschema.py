"""The JSON Schema of services.yaml, generated from the pydantic models of config/schema.py.

It describes the file as a user writes it, before interpolation and before the models'
own short forms are expanded: wherever a number, a boolean, a fixed word or a duration
goes, a `${VAR}` reference may stand instead (it is interpolated, then coerced, SPEC §2),
and `depends_on: [a, b]`, `env_file: x.env` or `level: debug` are as good as their long
forms. The descriptions come from config/keydocs.py.

`python start_system.py schema` prints it; docs/services.schema.json is its committed copy,
which editors read through the modeline at the top of services.yaml. CLI only: the
running supervisor never imports this module.
"""

from __future__ import annotations

import copy
import json
from typing import Any, get_args

from pydantic import BaseModel

from unified_system.config import keydocs, schema
from unified_system.config.units import any_case

DIALECT = "https://json-schema.org/draft/2020-12/schema"
INTERPOLATED = "Interpolated"
REF = {"$ref": f"#/$defs/{INTERPOLATED}"}
# ${VAR}, $VAR, ${VAR:-default}, ${VAR:?message}; `$$` alone is a literal dollar
INTERPOLATED_SCHEMA = {
    "type": "string", "pattern": r"\$(\{[A-Za-z_]|[A-Za-z_])",
    "description": "A ${VAR} / ${VAR:-default} reference: interpolated from the environment "
                   "and .env, then validated as the value it stands for.",
}
_NUMERIC_BOUNDS = ("exclusiveMinimum", "maximum", "exclusiveMaximum")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("additionalProperties", "items", "not", "propertyNames")


def services_schema() -> dict[str, Any]:
    """The JSON Schema of services.yaml (draft 2020-12)."""
    raw = schema.Config.model_json_schema(mode="validation")
    defs: dict[str, Any] = raw.pop("$defs")
    defs["Config"] = raw
    models = _models()
    for name, body in defs.items():
        _describe(body, models[name])
    _short_forms(defs)
    kinds: dict[str, Any] = {}
    defs = {name: _kinds(body, kinds) for name, body in defs.items()}
    defs.update(kinds)
    defs = {name: _interpolable(body) for name, body in defs.items()}
    defs[INTERPOLATED] = dict(INTERPOLATED_SCHEMA)
    root = defs.pop("Config")
    return {"$schema": DIALECT, **root, "title": "services.yaml of unified-system",
            "$defs": dict(sorted(defs.items()))}


def dumps(value: dict[str, Any]) -> str:
    """The committed text of docs/services.schema.json."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _models() -> dict[str, type[BaseModel]]:
    return {name: cls for name, cls in vars(schema).items()
            if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == schema.__name__}


def _describe(body: dict[str, Any], model: type[BaseModel]) -> None:
    """Key descriptions from keydocs; pydantic's generated titles ("Max Bytes") say less."""
    section = keydocs.SECTIONS.get(model.__name__)
    if section:
        body["description"] = section
    for field, prop in body.get("properties", {}).items():
        prop.pop("title", None)
        text = keydocs.key_doc(model.__mro__, field)
        if text:
            prop["description"] = text


def _short_forms(defs: dict[str, Any]) -> None:
    """What the models' `mode="before"` validators accept besides the long forms."""
    service = defs["Service"]["properties"]
    deps = service["depends_on"]
    deps["additionalProperties"] = {"anyOf": [deps["additionalProperties"], {"type": "null"}]}
    listed = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    service["depends_on"] = {"anyOf": [{k: deps.pop(k) for k in ("type", "additionalProperties")},
                                       listed], **deps}
    for prop in (service["env_file"], defs["Watch"]["properties"]["paths"]):
        prop["anyOf"] = [{k: prop.pop(k) for k in ("type", "items")}, {"type": "string"}]
    level = defs["LogConfig"]["properties"]["level"]
    words = get_args(schema.LogConfig.model_fields["level"].annotation)
    level["anyOf"] = [{k: level.pop(k) for k in ("type", "enum") if k in level},
                      {"type": "string", "pattern": f"^({'|'.join(map(any_case, words))})$"}]
    config = defs["Config"]
    config["properties"]["services"]["propertyNames"] = {
        "pattern": f"^{schema.SERVICE_NAME.pattern}$", "maxLength": schema.SERVICE_NAME_MAX}
    overlays = config["properties"]["environments"]   # `staging:` with nothing under it is empty
    overlays["additionalProperties"] = {"anyOf": [overlays["additionalProperties"], {"type": "null"}]}
    # compose-style extension fields (anchors for `<<: *defaults`), ignored by the loader
    config["patternProperties"] = {"^x-": {}}


def _kinds(node: Any, kinds: dict[str, Any]) -> Any:
    """A units.JsonForms value becomes a $ref to one $defs entry per kind; bounds a field
    adds (`period` > 0) stay beside the $ref and apply to the number form only."""
    if isinstance(node, list):
        return [_kinds(item, kinds) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: (_kinds(value, kinds) if key not in ("default", "examples", "enum", "const")
                  else value) for key, value in node.items()}
    kind = node.pop("x-kind", None)
    if kind is None:
        return node
    forms = copy.deepcopy(node.pop("anyOf"))
    bounds: dict[str, Any] = {}
    for form in forms:
        if form.get("type") in ("number", "integer"):
            bounds.update({k: form.pop(k) for k in _NUMERIC_BOUNDS if k in form})
    kinds.setdefault(kind, {"anyOf": forms, "description": node.pop("x-kind-description")})
    node.pop("x-kind-description", None)
    return {"$ref": f"#/$defs/{kind}", **bounds, **node}


def _needs_interpolation(node: dict[str, Any]) -> bool:
    """A value an interpolated string would not satisfy as it is written."""
    if "enum" in node or "const" in node:
        return True
    kind = node.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "string" in kinds:
        return "pattern" in node
    return bool(kinds & {"integer", "number", "boolean"})


def _interpolable(node: Any, in_any_of: bool = False) -> Any:
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _SUBSCHEMA_MAPS:
        if key in out:
            out[key] = {k: _interpolable(v) for k, v in out[key].items()}
    for key in _SUBSCHEMAS:
        if isinstance(out.get(key), dict):
            out[key] = _interpolable(out[key])
    for key in _SUBSCHEMA_LISTS:
        if key in out:
            out[key] = [_interpolable(v, in_any_of=key == "anyOf") for v in out[key]]
    if "anyOf" in out:
        if any(_needs_interpolation(v) for v in out["anyOf"]) and REF not in out["anyOf"]:
            out["anyOf"] = [*out["anyOf"], REF]
        return out
    if in_any_of or not _needs_interpolation(out):
        return out
    notes = {k: out.pop(k) for k in ("description", "default", "title", "examples") if k in out}
    return {"anyOf": [out, REF], **notes}
