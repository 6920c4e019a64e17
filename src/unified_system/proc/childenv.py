"""The environment a child sees: an allowlist of ours, its env files, its env, then SPEC §3."""

from __future__ import annotations

from collections.abc import Mapping

from unified_system.config.envfile import EnvFileError, read_env_file
from unified_system.proc.seam import SpawnError


def build_env(inherit: tuple[str, ...], env_files: tuple, env: Mapping[str, str],
              environ: Mapping[str, str], protocol: Mapping[str, str]) -> dict[str, str]:
    """SpawnError when an env file has become unreadable since the config was checked."""
    child = {name: environ[name] for name in inherit if name in environ}
    for path in env_files:
        try:
            values = read_env_file(path)
        except EnvFileError as exc:
            raise SpawnError(str(exc)) from None
        child.update({k: v for k, v in values.items() if v is not None})
    child.update(env)
    # The protocol variables come last: a service cannot spoof its identity or socket.
    child.update(protocol)
    return child
