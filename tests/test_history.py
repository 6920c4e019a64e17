"""Issue 19 part 1: each service's history of samples, over HTTP and SSE, bounded in memory."""

from __future__ import annotations

import math
import os
import signal

import httpx
import pytest
from test_api_sse import EventReader

from harness import CHILDREN, PY, SupervisorProcess, free_port, wait_until
from unified_system.api.history import COLUMNS, SAMPLE_BYTES, Ring, capacity

HISTORY = "history: {period: 200ms, keep: 1h}"


def test_ring_keeps_the_newest_samples_oldest_first_in_a_fixed_size():
    ring = Ring(4)
    before = ring.nbytes
    for t in range(10):
        ring.add({"t": float(t), "cpu_percent": t * 1.5, "memory_rss_bytes": t * 1024,
                  "restarts": t, "probe_ms": None, "ready": t % 2 == 0})
    assert ring.nbytes == before == 4 * SAMPLE_BYTES   # allocated whole, never grows
    cols = ring.columns()
    assert cols["t"] == [6.0, 7.0, 8.0, 9.0]
    assert cols["cpu_percent"] == [9.0, 10.5, 12.0, 13.5]
    assert cols["memory_rss_bytes"] == [6144, 7168, 8192, 9216]
    assert cols["probe_ms"] == [None] * 4
    assert cols["ready"] == [True, False, True, False]
    assert ring.columns(since=8.0)["restarts"] == [8, 9]
    assert ring.columns(since=1e12)["t"] == []


def test_ring_stores_no_value_as_null():
    ring = Ring(3)
    ring.add({"t": 1.0, "cpu_percent": None, "memory_rss_bytes": None, "restarts": 0,
              "probe_ms": None, "ready": False})
    cols = ring.columns()
    assert set(cols) == set(COLUMNS)
    assert cols["cpu_percent"] == [None] and cols["memory_rss_bytes"] == [None]


def test_one_hour_for_100_services_fits_the_budget():
    # The default: one sample every 5 s for an hour. The figure is in bench/RESULTS.md.
    size = capacity(5.0, 3600.0)
    assert size * 5.0 >= 3600.0
    total = sum(Ring(size).nbytes for _ in range(100))
    assert total <= 1_600_000, total   # 21 bytes x 721 samples x 100


def _history(sup: SupervisorProcess, key: str, name: str, query: str = "") -> httpx.Response:
    return httpx.get(f"{sup.api_url}/api/services/{name}/history{query}",
                     headers={"X-API-Key": key}, timeout=10.0)


@pytest.mark.slow
def test_history_serves_samples_and_sse_carries_them(tmp_path):
    port = free_port()
    with SupervisorProcess(tmp_path, f"""
        services:
          web:
            command: ["{{py}}", "{{children}}/http_health.py", "{port}", "{tmp_path}/bad"]
            readiness: {{http: {{url: "http://127.0.0.1:{port}/health"}}, period: 200ms}}
          worker: {{command: ["{{py}}", "{{children}}/sleeper.py"]}}
    """, supervisor=HISTORY) as sup:
        sup.wait_api(30)
        key = sup.api_key()
        sup.wait_state("web", "running", 30)

        def ready_samples():
            cols = _history(sup, key, "web").json()
            return len([r for r in cols["ready"] if r]) >= 3 and cols
        cols = wait_until(ready_samples, 30, "3 ready samples of web",
                          seen=lambda: _history(sup, key, "web").text[-500:])
        assert cols["service"] == "web" and cols["period"] == 0.2 and cols["keep"] == 3600.0
        n = len(cols["t"])
        assert all(len(cols[c]) == n for c in COLUMNS)      # columnar: one row per sample
        assert cols["t"] == sorted(cols["t"])
        assert cols["memory_rss_bytes"][-1] > 1_000_000
        assert cols["cpu_percent"][-1] is not None
        assert cols["probe_ms"][-1] is not None and cols["probe_ms"][-1] >= 0
        assert cols["restarts"][-1] == 0

        since = cols["t"][-1]
        later = _history(sup, key, "web", f"?since={since}").json()
        assert later["t"] and min(later["t"]) >= since and len(later["t"]) < n + 5

        # a restart shows in the restarts column
        pid = sup.wait_state("worker", "running")["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: (_history(sup, key, "worker").json()["restarts"] or [0])[-1] == 1, 30,
                   "worker's restart in its history",
                   seen=lambda: _history(sup, key, "worker").json()["restarts"][-5:])

        reader = EventReader(sup.api_url + "/api/events", sup.api_key())
        try:
            _, data, _ = reader.wait_for(lambda name, d: name == "sample" and d["service"] == "web", 30)
            assert data["type"] == "sample" and data["ready"] is True
            assert data["memory_rss_bytes"] > 0 and isinstance(data["at"], float)
            assert set(data) == {"type", "service", "at", "cpu_percent", "memory_rss_bytes",
                                 "restarts", "probe_ms", "ready"}
        finally:
            reader.close()
        assert sup.stop() == 0


@pytest.mark.slow
def test_history_refuses_bad_queries_and_releases_removed_services(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          keep: {command: ["{py}", "{children}/sleeper.py"]}
          drop: {command: ["{py}", "{children}/sleeper.py"]}
    """, supervisor=HISTORY) as sup:
        sup.wait_api(30)
        key = sup.api_key()
        wait_until(lambda: _history(sup, key, "drop").json()["t"], 30, "a sample of drop")
        for bad in ("nan", "inf", "-inf", "1e400", "abc", "", "%ff", "1" * 5000):
            answer = _history(sup, key, "keep", f"?since={bad}")
            assert answer.status_code == 422, (bad, answer.text)
        assert _history(sup, key, "nope").status_code == 404
        assert _history(sup, key, "..%2f..%2fetc").status_code == 404
        assert _history(sup, "wrong", "keep").status_code in (200, 401)   # loopback reads
        assert _history(sup, key, "keep", "?since=-1e308").status_code == 200

        def stats():
            return httpx.get(sup.api_url + "/api/diagnostics", headers={"X-API-Key": key},
                             timeout=10).json()["control_plane"]["history"]
        assert stats()["services"] == 2
        per_ring = stats()["bytes"] // 2
        text = sup.config_path.read_text()
        sup.config_path.write_text(text[:text.index("services:")] + f"""services:
  keep: {{command: ["{PY}", "{CHILDREN}/sleeper.py"]}}
""")
        sup.signal(signal.SIGHUP)
        wait_until(lambda: stats()["services"] == 1, 30, "drop's history released", seen=stats)
        assert stats()["bytes"] == per_ring
        assert _history(sup, key, "drop").status_code == 404
        assert not math.isnan(per_ring)
        assert sup.stop() == 0
