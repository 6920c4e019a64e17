"""Delivers fills from the state's outbox to the backend, at least once.

A fill enters the outbox and is checkpointed *before* it is posted, so a crash at any
point either re-posts it after the restart (the backend is idempotent on ``fill_id``) or
finds it already acknowledged. A fill leaves the outbox only on a 2xx answer.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger("trading_bot.delivery")


# Refusals of who we are, not of the fill: the token may be fixed (a backend restarted with
# the new one), so the fill stays queued instead of being dropped.
AUTH_REFUSED = (401, 403)


def post_fill(backend_url: str, fill: dict[str, Any], timeout: float = 2.0,
              token: str | None = None) -> int:
    """POST one fill; returns the HTTP status (raises OSError when unreachable)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{backend_url}/api/trades",
        data=json.dumps(fill).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Deliverer(threading.Thread):
    """Drains ``state["outbox"]`` (shared, guarded by ``lock``) with backoff on failure."""

    def __init__(self, backend_url: str, state: Callable[[], dict[str, Any]],
                 lock: threading.Lock, initial_backoff: float = 0.2, max_backoff: float = 5.0,
                 token: str | None = None):
        super().__init__(name="fill-delivery", daemon=True)
        self.backend_url = backend_url
        self.token = token
        self.state = state  # a getter: the engine's state dict
        self.lock = lock
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.delivered = 0
        self.rejected = 0

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.join(5.0)

    def _head(self) -> dict[str, Any] | None:
        with self.lock:
            outbox = self.state()["outbox"]
            return dict(outbox[0]) if outbox else None

    def _remove(self, fill_id: str) -> None:
        with self.lock:
            outbox = self.state()["outbox"]
            outbox[:] = [f for f in outbox if f["fill_id"] != fill_id]

    def drain_once(self) -> bool:
        """Try to deliver everything now; True when the outbox is empty."""
        while (fill := self._head()) is not None:
            try:
                status = post_fill(self.backend_url, fill, token=self.token)
            except OSError as exc:
                log.warning("backend unreachable (%s); %s stays queued", exc, fill["fill_id"])
                return False
            if 200 <= status < 300:
                self.delivered += 1
                self._remove(fill["fill_id"])
            elif status in AUTH_REFUSED:
                log.error("backend refused our LEDGER_TOKEN (%s); %s stays queued", status,
                          fill["fill_id"])
                return False
            elif 400 <= status < 500 and status not in (404, 408, 429):
                # The backend will never accept this body; keeping it would block the queue.
                log.error("backend rejected fill %s with %s; dropped", fill["fill_id"], status)
                self.rejected += 1
                self._remove(fill["fill_id"])
            else:
                log.warning("backend answered %s for %s; will retry", status, fill["fill_id"])
                return False
        return True

    def run(self) -> None:
        backoff = self.initial_backoff
        while not self.stopping.is_set():
            # Clear before draining: a fill queued during the drain leaves the event set,
            # so the wait below returns at once instead of sleeping past it.
            self.wake.clear()
            if self.drain_once():
                backoff = self.initial_backoff
                self.wake.wait()  # until the next fill (or stop)
            else:
                self.wake.wait(backoff)
                backoff = min(self.max_backoff, backoff * 2)
