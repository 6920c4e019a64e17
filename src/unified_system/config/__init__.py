"""services.yaml -> a frozen, validated Config, or every error with file:line:col."""

from unified_system.config.checks import busy_listen_ports, resolve_executable
from unified_system.config.errors import ConfigError, ConfigErrors
from unified_system.config.loader import LoadedConfig, load_config
from unified_system.config.schema import Config, Dependency, Probe, Service, SupervisorConfig

__all__ = [
    "load_config", "LoadedConfig", "ConfigError", "ConfigErrors", "Config", "Service",
    "SupervisorConfig", "Probe", "Dependency", "busy_listen_ports", "resolve_executable",
]
