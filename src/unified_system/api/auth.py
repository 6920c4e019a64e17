"""API key, heartbeat tokens, and the scrubber that keeps secret values out of answers."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

from unified_system.logsetup import get_logger
from unified_system.redaction import Redactor, secret_values
from unified_system.runfile import KEY_FILE
from unified_system.tokens import compare_digest, token_urlsafe

_IPV6_LOOPBACK = bytes(15) + b"\x01"


def load_or_create_key(state_dir: Path) -> str:
    """The key in <state_dir>/api_key, created (0600, atomically) when absent or empty.

    A file that group or others could read (or a link, or not a regular file) is not
    trusted: whoever read it holds the key, and tightening its mode now would not take it
    back. It is replaced by a new key, with a warning."""
    path = state_dir / KEY_FILE
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 or info.st_uid != os.getuid():
            get_logger(component="api").warning(
                "api_key file was not private (open to group or others, a link, or another "
                "user's): replaced by a new key, which clients must read again",
                path=str(path), mode=oct(stat.S_IMODE(info.st_mode)),
                regular=stat.S_ISREG(info.st_mode), owner=info.st_uid)
        else:
            existing = path.read_text().strip()
            if existing:
                return existing
    except FileNotFoundError:
        pass
    key = token_urlsafe(32)
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)   # whatever the umask, and a stale tmp file's mode
        os.write(fd, (key + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)   # replaces a link itself, never its target
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
    # ipaddress.ip_address(host).is_loopback, without ipaddress resident (~0.25 MB): 127/8, ::1
    try:
        return socket.inet_pton(socket.AF_INET, host)[0] == 127
    except (OSError, ValueError):
        pass
    try:
        return socket.inet_pton(socket.AF_INET6, host) == _IPV6_LOOPBACK
    except (OSError, ValueError):
        return False


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing value never matches."""
    if not given or not expected:
        return False
    return compare_digest(given.encode(), expected.encode())


class Scrubber(Redactor):
    """Replaces known secret values (api key, tokens, secret-named env values) in text.

    Name-based redaction (logsetup.redact) catches structured data; this catches a secret
    value that ended up inside free text, such as a child's log line or a probe's detail.
    The rules for short values are redaction.Redactor's.
    """

    @classmethod
    def for_supervisor(cls, view: Any, api_key: str) -> Scrubber:
        return cls(secret_values(view, api_key))
