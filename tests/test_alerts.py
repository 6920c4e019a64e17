"""Webhook alerts: retried after a failing receiver, deduplicated, never blocking the owner."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import SupervisorProcess, wait_until
from unified_system.api.alerts import Alerts, alert_name


class Receiver:
    """A webhook endpoint that answers 500 to its first `fail` requests, then 200."""

    def __init__(self, fail: int = 1) -> None:
        self.requests: list[tuple[int, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code = 500 if len(receiver.requests) < fail else 200
                receiver.requests.append((code, body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict]:
        return [body for code, body in self.requests if code == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(fail=1)
    yield r
    r.close()


def test_webhook_is_retried_after_the_receiver_fails(tmp_path, receiver):
    with SupervisorProcess(tmp_path, """
        services:
          flaky:
            command: ["{py}", "{children}/crasher.py", "1"]
            critical: false
            restart: {backoff: {initial: 0}, max_restarts: 2, window: 60s, cooldown: null}
    """, supervisor=f"notify: {{webhooks: [\"{receiver.url}\"]}}") as sup:
        sup.wait_state("flaky", "fatal")
        wait_until(lambda: len(receiver.accepted()) >= 2, 15, "two delivered alerts",
                   seen=lambda: receiver.requests)
        first_code, first_body = receiver.requests[0]
        assert first_code == 500
        assert receiver.requests[1] == (200, first_body)       # the same alert, retried
        events = sorted(b["event"] for b in receiver.accepted())
        assert events == ["circuit_open", "fatal"]
        fatal = next(b for b in receiver.accepted() if b["event"] == "fatal")
        assert fatal["service"] == "flaky" and fatal["reason"] == "circuit_open"
        assert fatal["text"].startswith("[unified-system] flaky: fatal")
        assert isinstance(fatal["at"], float) and fatal["host"]
        # the log record is written by the logging thread, maybe after the retry landed
        retry = wait_until(lambda: [r for r in sup.records() if r.get("event") == "webhook retry"],
                           what="the webhook retry record")
        assert retry[0]["attempt"] == 1
        assert receiver.url not in sup.stdout_path.read_text()   # a webhook URL is a secret too
        assert sup.stop() == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fatal(service="svc", at=1.0):
    return {"type": "state", "service": service, "state": "fatal", "reason": "crash", "at": at}


def test_only_chosen_events_and_fatal_states_are_alerts():
    alerts = Alerts(["http://127.0.0.1:9/x"], ["fatal", "freeze"])
    assert alert_name(fatal()) == "fatal"
    alerts.on_event({"type": "state", "service": "svc", "state": "running", "at": 1.0})
    alerts.on_event({"type": "probe", "service": "svc", "ok": False, "at": 1.0})
    assert alerts.queue.qsize() == 0
    alerts.on_event(fatal())
    alerts.on_event({"type": "freeze", "service": "svc", "kind": "soft", "at": 2.0})
    assert [alerts.queue.get_nowait()["event"] for _ in range(2)] == ["fatal", "freeze"]


def test_deduplicated_per_service_and_event_for_a_minute():
    clock = FakeClock()
    alerts = Alerts(["http://127.0.0.1:9/x"], ["fatal"], clock=clock)
    alerts.on_event(fatal("a"))
    clock.now += 59
    alerts.on_event(fatal("a"))          # same (service, event) within 60 s: dropped
    alerts.on_event(fatal("b"))          # another service is another alert
    clock.now += 2
    alerts.on_event(fatal("a"))          # 61 s after the first: sent again
    assert alerts.queue.qsize() == 3 and alerts.deduplicated == 1


def test_a_full_queue_drops_and_counts_instead_of_blocking():
    clock = FakeClock()
    alerts = Alerts(["http://127.0.0.1:9/x"], ["fatal"], clock=clock, size=2)
    for i in range(5):
        alerts.on_event(fatal(f"s{i}"))   # no worker running: nothing drains
    assert alerts.queue.qsize() == 2 and alerts.dropped == 3


def test_no_webhooks_no_thread():
    alerts = Alerts([], ["fatal"])
    alerts.start()
    alerts.on_event(fatal())
    assert alerts.queue.qsize() == 0 and alerts._thread is None
    alerts.close()


def test_gives_up_after_the_retries(receiver):
    always_failing = Receiver(fail=100)
    alerts = Alerts([always_failing.url], ["fatal"], retry_delays=(0.01, 0.02, 0.04))
    alerts.start()
    try:
        alerts.on_event(fatal())
        wait_until(lambda: alerts.failed == 1, 10, "the alert to be given up")
        assert len(always_failing.requests) == 4     # the first attempt and three retries
    finally:
        alerts.close()
        always_failing.close()


def test_freezes_deduplicate_per_kind_and_cleared_is_not_a_freeze():
    alerts = Alerts(["http://127.0.0.1:9/x"], ["freeze"], clock=FakeClock())
    for kind in ("soft", "soft", "hard", "cleared"):
        alerts.on_event({"type": "freeze", "service": "a", "kind": kind, "at": 1.0})
    sent = [alerts.queue.get_nowait() for _ in range(alerts.queue.qsize())]
    assert [(b["event"], b["reason"]) for b in sent] == [("freeze", "soft"), ("freeze", "hard")]
