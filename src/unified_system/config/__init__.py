"""services.yaml -> a frozen, validated Config, or every error with file:line:col.

The names below load on first use (PEP 562): the running supervisor imports only the
light submodules it needs (envfile, view, apart), never pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unified_system.config.checks import busy_listen_ports, resolve_executable
    from unified_system.config.errors import ConfigError, ConfigErrors
    from unified_system.config.loader import load_config
    from unified_system.config.schema import Config, Dependency, Probe, Service, SupervisorConfig
    from unified_system.config.view import LoadedConfig

_HOME = {
    "busy_listen_ports": "checks", "resolve_executable": "checks",
    "ConfigError": "errors", "ConfigErrors": "errors",
    "LoadedConfig": "view", "load_config": "loader",
    "Config": "schema", "Dependency": "schema", "Probe": "schema", "Service": "schema",
    "SupervisorConfig": "schema",
}
__all__ = list(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
