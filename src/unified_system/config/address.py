"""Where the running supervisor listens, and its key, read without the schema.

Every client command (status, logs, start, ...) needs only this, and importing pydantic and
the schema costs a client several times its whole run. The quick path reads the same file,
.env and overlay, and interpolates the same way; anything it is not sure of (a value of an
odd type, a failed ${VAR:?}, an overlay of the supervisor section) returns None, and the
caller falls back to the full loader, whose errors are the schema's own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_system.config.envfile import EnvFileError, read_env_file
from unified_system.config.errors import ConfigErrors
from unified_system.config.interpolate import interpolate_tree
from unified_system.config.yamlsrc import load_yaml
from unified_system.runfile import KEY_FILE


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    api_key: str | None
    state_dir: Path


def read_address(path: str | os.PathLike[str] | None, env_name: str | None,
                 environ: Mapping[str, str] | None = None) -> Address | None:
    environ = os.environ if environ is None else environ
    absolute = Path(os.path.abspath(path or environ.get("UNIFIED_CONFIG") or "services.yaml"))
    base = absolute.parent
    try:
        text = absolute.read_text(encoding="utf-8")
        dotenv = base / ".env"
        values = read_env_file(dotenv) if dotenv.is_file() else {}
        data = load_yaml(text, str(absolute)).data
    except (OSError, UnicodeDecodeError, EnvFileError, ConfigErrors):
        return None
    if not isinstance(data, dict):
        return None
    merged = {**{k: v for k, v in values.items() if v is not None}, **environ}
    envs = data.get("environments") or {}
    name = env_name if env_name is not None else merged.get("NODE_ENV")
    if not isinstance(envs, dict) or (env_name is not None and env_name not in envs):
        return None
    overlay = envs.get(name) if name is not None else None
    if isinstance(overlay, dict) and "supervisor" in overlay:
        return None
    section = data.get("supervisor") or {}
    if not isinstance(section, dict):
        return None
    doc, failed = interpolate_tree(section, merged)
    if failed:
        return None
    return _address(doc, base)


def _address(doc: dict[str, Any], base: Path) -> Address | None:
    host, port, key, state_dir = (doc.get("host", "127.0.0.1"), doc.get("port", 8900),
                                  doc.get("api_key", ""), doc.get("state_dir", ".unified-system"))
    if isinstance(port, str) and port.isdigit():   # interpolated numbers stay text until here
        port = int(port)
    if not (isinstance(host, str) and host and type(port) is int and 1 <= port <= 65535
            and isinstance(key, str) and isinstance(state_dir, str) and state_dir):
        return None
    where = Path(os.path.abspath(os.path.join(base, os.path.expanduser(state_dir))))
    if not key:
        try:
            key = (where / KEY_FILE).read_text().strip()
        except OSError:
            key = ""
    return Address(host, port, key or None, where)
