"""Random tokens and a constant-time comparison, without `secrets` and `hmac`: both import
`_hashlib`, which maps OpenSSL's libcrypto (~3.5 MB of RSS) into the supervisor that runs for
weeks, for `os.urandom` and a compare (issue 20; bench/RESULTS.md "Footprint").
"""

from __future__ import annotations

import binascii
import os

# The comparison hmac.compare_digest itself falls back to when OpenSSL is absent: C, and
# its time depends only on the length of the inputs, never on where they differ.
from _operator import _compare_digest

_URLSAFE = bytes.maketrans(b"+/", b"-_")


def token_urlsafe(nbytes: int) -> str:
    """`nbytes` random bytes from the OS, URL-safe base64 without padding: what
    secrets.token_urlsafe(nbytes) returns."""
    # binascii (C) as base64.urlsafe_b64encode does, without importing base64 (0.1 MB)
    encoded = binascii.b2a_base64(os.urandom(nbytes), newline=False)
    return encoded.translate(_URLSAFE).rstrip(b"=").decode("ascii")


def compare_digest(given: bytes, expected: bytes) -> bool:
    return _compare_digest(given, expected)
