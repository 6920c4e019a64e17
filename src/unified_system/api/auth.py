"""API key, heartbeat tokens, and the scrubber that keeps secret values out of answers."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any

from unified_system.redaction import Redactor, secret_values

KEY_FILE = "api_key"


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


class Scrubber(Redactor):
    """Replaces known secret values (api key, tokens, secret-named env values) in text.

    Name-based redaction (logsetup.redact) catches structured data; this catches a secret
    value that ended up inside free text, such as a child's log line or a probe's detail.
    The rules for short values are redaction.Redactor's.
    """

    @classmethod
    def for_supervisor(cls, sup: Any, api_key: str) -> Scrubber:
        return cls(secret_values(sup, api_key))
