"""GET /api/events: the snapshot first, owner events promptly, and a slow client dropped."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time

import httpx

from harness import SupervisorProcess, wait_until


class EventReader:
    """Reads an SSE stream on a thread into a queue of (event, data, arrival time)."""

    def __init__(self, url: str, key: str) -> None:
        self.events: queue.Queue = queue.Queue()
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=30))
        self._ctx = self._client.stream("GET", url, headers={"X-API-Key": key})
        self.response = self._ctx.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name, data = None, []
        try:
            for line in self.response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and name is not None:
                    self.events.put((name, json.loads("\n".join(data)), time.monotonic()))
                    name, data = None, []
        except httpx.HTTPError:
            pass

    def next(self, timeout: float = 5.0):
        return self.events.get(timeout=timeout)

    def wait_for(self, match, timeout: float):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                item = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(item[:2])
            if match(*item[:2]):
                return item
        raise AssertionError(f"no matching event within {timeout}s; saw {seen}")

    def close(self) -> None:
        self._ctx.__exit__(None, None, None)
        self._client.close()


def test_snapshot_first_then_restart_events_within_a_second(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          web: {command: ["{py}", "{children}/sleeper.py"]}
          api: {command: ["{py}", "{children}/sleeper.py"], depends_on: [web]}
    """) as sup:
        sup.wait_api()
        key = sup.api_key()
        sup.wait_state("api", "running")
        reader = EventReader(sup.api_url + "/api/events", key)
        try:
            assert reader.response.status_code == 200
            assert reader.response.headers["content-type"].startswith("text/event-stream")
            name, data, _ = reader.next()
            assert name == "snapshot"
            assert [s["name"] for s in data["services"]] == ["web", "api"]
            assert data["services"][0]["memory_rss_bytes"] > 0

            posted = time.monotonic()
            r = httpx.post(sup.api_url + "/api/services/api/restart",
                           headers={"X-API-Key": key}, timeout=5)
            assert r.status_code == 202
            name, data, arrived = reader.wait_for(
                lambda n, d: n in ("restart", "state") and d.get("service") == "api", 10.0)
            # prompt, not queued behind anything; the bound is loose for a loaded 2-core VM
            assert arrived - posted < 5.0
            assert data["type"] == name and isinstance(data["at"], float)
            # and the stream carries the whole cycle back to running
            reader.wait_for(lambda n, d: n == "state" and d["service"] == "api"
                            and d["state"] == "running", 30.0)  # includes a process start
        finally:
            reader.close()
        assert sup.stop() == 0


def test_a_client_that_never_reads_is_dropped(tmp_path):
    # Each `false` flaps as fast as the owner can restart it (~4 events a restart) until its
    # circuit opens; together several times what the socket buffers and the queue hold.
    # (max_restarts stays under the owner's 256-entry restart history, or it never trips.)
    flappers = "".join(f"""
          flap{i}:
            command: ["false"]
            critical: false
            restart: {{policy: always, backoff: {{initial: 0}}, max_restarts: 250, window: 1h,
                      cooldown: null}}""" for i in range(4))
    with SupervisorProcess(tmp_path, """
        services:
          web: {command: ["{py}", "{children}/sleeper.py"]}""" + flappers + """
    """, args=("--only", "web")) as sup:
        sup.wait_api()
        key = sup.api_key()
        host, port = sup.api_address()
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect((host, port))
        slow.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\n\r\n" % key.encode())
        try:
            wait_until(lambda: httpx.get(sup.api_url + "/api/diagnostics", headers={"X-API-Key": key}, timeout=5)
                       .json()["control_plane"]["sse_subscribers"] == 1, 5, "the subscriber")
            # --only web kept it down until now, so the flood starts after subscribing
            for i in range(4):
                r = httpx.post(sup.api_url + f"/api/services/flap{i}/start",
                               headers={"X-API-Key": key}, timeout=5)
                assert r.status_code == 202
            wait_until(lambda: [r for r in sup.records() if r.get("event", "").startswith(
                "sse subscriber dropped")], 60, "the slow subscriber to be dropped")
            started = time.monotonic()
            diag = httpx.get(sup.api_url + "/api/diagnostics", headers={"X-API-Key": key}, timeout=5).json()
            assert time.monotonic() - started < 2.0   # the API never waited on the slow client
            assert diag["control_plane"]["sse_dropped"] >= 1
            assert diag["control_plane"]["sse_subscribers"] == 0
        finally:
            slow.close()
        # Let the flood end by itself: stopping a service that exits at that very moment hit
        # an owner race (IllegalTransition running -> stopped), reported separately.
        wait_until(lambda: all(s["state"] == "fatal" for s in httpx.get(
            sup.api_url + "/api/services", headers={"X-API-Key": key}, timeout=5).json() if s["name"] != "web"), 60,
            "the flapping services' circuits to open")
        code = sup.stop()
        assert code == 0, sup.output()[-3000:]
