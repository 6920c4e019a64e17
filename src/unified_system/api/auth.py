"""API key, heartbeat tokens, and the scrubber that keeps secret values out of answers."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from unified_system.logsetup import SECRET_NAME, replace_values

KEY_FILE = "api_key"
MIN_SECRET_LEN = 6   # shorter values would scrub ordinary words out of log lines


def load_or_create_key(state_dir: Path) -> str:
    """The key in <state_dir>/api_key, created (0600, atomically) when absent or empty."""
    path = state_dir / KEY_FILE
    try:
        existing = path.read_text().strip()
        if existing:
            os.chmod(path, 0o600)  # an older file with looser bits is tightened, not trusted
            return existing
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(32)
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (key + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key


def read_key(state_dir: Path) -> str | None:
    """For clients: the generated key, if the supervisor wrote one."""
    try:
        return (state_dir / KEY_FILE).read_text().strip() or None
    except OSError:
        return None


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (host names are case-insensitive)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing value never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _env_file(path: str | os.PathLike[str]) -> Mapping[str, str | None]:
    from unified_system.config.envfile import EnvFileError, read_env_file

    try:
        return read_env_file(path)
    except EnvFileError:  # unreadable since the config was checked: its child got none either
        return {}


class Scrubber:
    """Replaces known secret values (api key, tokens, secret-named env values) in text.

    Name-based redaction (logsetup.redact) catches structured data; this catches a secret
    value that ended up inside free text, such as a child's log line or a probe's detail.
    """

    def __init__(self, values: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.values = tuple(sorted({v for v in values if v and len(v) >= MIN_SECRET_LEN},
                                   key=len, reverse=True))

    @classmethod
    def for_supervisor(cls, sup: Any, api_key: str) -> Scrubber:
        values = [api_key, *sup.runtime.tokens.values()]
        store = getattr(sup.runtime, "secrets", None)
        if store is not None:   # generated secrets are redacted whatever their name
            values += [store.get(n) for svc in sup.config.services.values() for n in svc.secrets]
        loaded = getattr(sup, "loaded", None)
        environs: list[Mapping[str, str | None]] = [getattr(sup.runtime, "environ", os.environ)]
        if loaded is not None:
            environs.append(loaded.environ)  # with the .env beside services.yaml
        for svc in sup.config.services.values():
            environs.append(svc.env)
            environs += map(_env_file, svc.env_file)
        for environ in environs:
            values += [str(v) for k, v in environ.items() if v is not None and SECRET_NAME.search(k)]
        return cls(values)

    def text(self, value: str) -> str:
        return replace_values(value, self.values)
