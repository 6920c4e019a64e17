"""Threat: behind Railway's proxy every client arrives from the proxy's address, so one noisy
client spends the rate-limit bucket of all of them (and locks everyone out).

services.yaml must hand TRUST_PROXY to the gateway. The real application runs with
TRUST_PROXY=1, as behind one proxy; this test plays the proxy (loopback) and forwards two
clients, each named by its X-Forwarded-For. Before the fix services.yaml did not pass
TRUST_PROXY on, and the second client found the bucket already spent by the first.
"""

from __future__ import annotations

import httpx
import pytest
from e2e.stack import AppStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LIMIT = 5


def test_each_forwarded_client_has_its_own_rate_limit_bucket(tmp_path):
    with AppStack(tmp_path, args=("--only", "node-server"),
                  env={"TRUST_PROXY": "1", "RATE_LIMIT_PER_MINUTE": str(LIMIT),
                       "HEALTH_CHECK_INTERVAL": "10"}) as app:
        app.wait_healthy()
        url = app.gateway + "/api/trades/summary"

        def codes(client: str, count: int, front: str = "198.51.100.7") -> list[int]:
            # As a proxy sends it: the client's address appended to what the client sent.
            # A client that forges its own entry (the first one) does not get a new bucket.
            forged = f"{front}, {client}"
            with httpx.Client(timeout=10) as c:
                return [c.get(url, headers={"X-Forwarded-For": forged}).status_code
                        for _ in range(count)]

        first = codes("203.0.113.1", LIMIT + 2)
        second = codes("203.0.113.22", LIMIT + 2)
        assert first == [200] * LIMIT + [429, 429], first
        assert second == [200] * LIMIT + [429, 429], (second, "the second client shares a bucket")
        # A spent bucket stays spent, whatever the client puts in front of its address.
        assert codes("203.0.113.1", 1, front="198.51.100.99") == [429]
        assert app.get(app.gateway + "/health").status_code == 200   # probes are never limited
        assert app.stop() == 0
