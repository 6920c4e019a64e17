"""Webhook alerts for chosen owner events (supervisor.notify).

The listener runs on the owner thread and only filters, deduplicates and enqueues; one worker
thread delivers, with retries and exponential backoff. A full queue drops (and counts) the
alert: an alert must never delay supervision.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

from unified_system.logsetup import get_logger, redact

QUEUE_SIZE = 100
DEDUP_WINDOW = 60.0
RETRY_DELAYS = (0.5, 1.0, 2.0)   # after the 1st, 2nd and 3rd failed attempts
TIMEOUT = 5.0


def alert_name(event: dict[str, Any]) -> str:
    """The notify.events name of an owner event: a `state` event to fatal counts as `fatal`."""
    kind = str(event.get("type"))
    if kind == "state":
        return str(event.get("state"))
    if kind == "freeze" and event.get("kind") == "cleared":
        return "freeze_cleared"   # good news is not a `freeze` alert
    return kind


class Alerts:
    def __init__(self, webhooks: Sequence[str], events: Sequence[str], *,
                 scrub: Callable[[str], str] = lambda s: s, clock: Callable[[], float] = time.monotonic,
                 retry_delays: Sequence[float] = RETRY_DELAYS, size: int = QUEUE_SIZE) -> None:
        self.webhooks = tuple(webhooks)
        self.events = frozenset(events)
        self.scrub = scrub
        self.clock = clock
        self.retry_delays = tuple(retry_delays)
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self._last: dict[tuple[str, str], float] = {}   # touched by the owner thread only
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.host = socket.gethostname()
        self.sent = self.failed = self.dropped = self.deduplicated = 0
        self._dropped_logged = 0
        self.log = get_logger(component="alerts")

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks)

    def start(self) -> None:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ owner thread
    def on_event(self, event: dict[str, Any]) -> None:
        name = alert_name(event)
        if not self.enabled or name not in self.events:
            return
        service = str(event.get("service"))
        # A hard freeze right after a soft one is news: freezes deduplicate per kind.
        key = (service, f"{name}:{event.get('kind')}" if name == "freeze" else name)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < DEDUP_WINDOW:
            self.deduplicated += 1
            return
        self._last[key] = now
        try:
            self.queue.put_nowait(self.payload(name, event))
        except queue.Full:
            self.dropped += 1   # logged by the worker side when it next runs, not here

    def forget(self, service: str) -> None:
        """A removed service's dedup stamps go with it."""
        for key in [k for k in self._last if k[0] == service]:
            del self._last[key]

    def payload(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        reason = event.get("reason") or event.get("kind")
        service = event.get("service")
        text = f"[unified-system] {service}: {name}" + (f" ({reason})" if reason else "") \
            + f" on {self.host}"
        if event.get("note"):
            text += f": {event['note']}"
        body = {"text": self.scrub(text), "service": service, "event": name, "reason": reason,
                "at": event.get("at"), "host": self.host}
        return redact(body)

    # ------------------------------------------------------------------ worker thread
    def _run(self) -> None:
        import httpx  # here, not at the top: a supervisor without webhooks never pays for it

        with httpx.Client(timeout=TIMEOUT) as client:
            while not self._stop.is_set():
                body = self.queue.get()
                if body is None:
                    return
                if self.dropped != self._dropped_logged:
                    self.log.warning("alerts dropped: queue full", dropped=self.dropped)
                    self._dropped_logged = self.dropped
                for url in self.webhooks:
                    try:
                        self._deliver(client, url, body)
                    except Exception:   # one bad delivery must not end all alerting
                        self.failed += 1
                        self.log.exception("webhook delivery crashed", service=body.get("service"))

    def _deliver(self, client: httpx.Client, url: str, body: dict[str, Any]) -> bool:
        import httpx

        delays = (*self.retry_delays, None)
        for attempt, delay in enumerate(delays, 1):
            try:
                response = client.post(url, json=body)
                if response.status_code < 300:
                    self.sent += 1
                    return True
                problem = f"HTTP {response.status_code}"
                retry = response.status_code >= 500 or response.status_code == 429
            except httpx.HTTPError as exc:
                problem, retry = type(exc).__name__, True
            if not retry or delay is None or self._stop.wait(delay):
                break
            self.log.info("webhook retry", service=body.get("service"), attempt=attempt,
                          problem=problem)
        self.failed += 1
        self.log.warning("webhook failed", service=body.get("service"), alert=body.get("event"),
                         problem=problem)
        return False
