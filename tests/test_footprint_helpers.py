"""The small stand-in that keeps ipaddress out of the resident supervisor gives the
answers of the module it replaces, for ordinary and hostile input alike."""

from __future__ import annotations

import ipaddress

import pytest

from unified_system.api.auth import is_loopback

HOSTS = ["127.0.0.1", "127.255.255.254", "127.1", "128.0.0.1", "126.255.255.255", "0.0.0.0",
         "::1", "::", "::2", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "fe80::1", "::1%lo",
         "localhost", "LOCALHOST", "localhost.", "example.com", "", " ", "127.0.0.1 ",
         "1" * 10_000, "127.0.0.1\x00", "::1\n", "[::1]", "999.0.0.1", "12345678901234567890",
         "127.0.0.\udcff", "::\udcff1"]


def expected(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # ipaddress reads a scope id ("%lo"); a Host header or a peer never carries one to us
    return address.is_loopback and "%" not in host


@pytest.mark.parametrize("host", HOSTS)
def test_is_loopback_answers_as_ipaddress_does(host):
    assert is_loopback(host) is expected(host)
