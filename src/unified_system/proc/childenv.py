"""The environment a child sees: an allowlist of ours, its env files, its env, then SPEC §3."""

from __future__ import annotations

from collections.abc import Mapping

from unified_system.config.envfile import read_env_file


def build_env(inherit: tuple[str, ...], env_files: tuple, env: Mapping[str, str],
              environ: Mapping[str, str], protocol: Mapping[str, str]) -> dict[str, str]:
    child = {name: environ[name] for name in inherit if name in environ}
    for path in env_files:
        child.update({k: v for k, v in read_env_file(path).items() if v is not None})
    child.update(env)
    # The protocol variables come last: a service cannot spoof its identity or socket.
    child.update(protocol)
    return child
