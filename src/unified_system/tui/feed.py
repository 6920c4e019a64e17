"""The terminal UI's side of the control API: reads, actions and the event stream, with no
Textual in sight, so it can be used and tested on its own."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

HISTORY = 120   # samples per service kept for the sparklines: 2 minutes at one a second


@dataclass
class Series:
    """The last HISTORY samples of one service's CPU and memory, for the sparklines."""

    cpu: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    rss: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def add(self, service: dict[str, Any]) -> None:
        self.cpu.append(float(service.get("cpu_percent") or 0.0))
        self.rss.append(float(service.get("memory_rss_bytes") or 0))


class Feed:
    """One supervisor's API, seen from the terminal UI."""

    def __init__(self, url: str, api_key: str | None, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        # trust_env off: an HTTP_PROXY must not be handed the key of a loopback API
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False)
        self.series: dict[str, Series] = {}

    def services(self) -> list[dict[str, Any]]:
        response = self.http.get("/api/services")
        response.raise_for_status()
        services: list[dict[str, Any]] = response.json()
        names = {s["name"] for s in services}
        for gone in set(self.series) - names:   # removed by a reload
            del self.series[gone]
        for svc in services:
            self.series.setdefault(svc["name"], Series()).add(svc)
        return services

    def logs(self, name: str, lines: int = 200) -> list[str]:
        response = self.http.get(f"/api/services/{_segment(name)}/logs", params={"lines": lines})
        response.raise_for_status()
        return list(response.json().get("lines") or [])

    def act(self, verb: str, name: str | None = None) -> str:
        """start / stop / restart NAME, or reload: what the supervisor answered, in one line."""
        if verb == "reload":
            response = self.http.post("/api/reload", timeout=310.0)
            if response.status_code == 200:
                diff = response.json()
                return "reload: " + "; ".join(f"{k} {', '.join(diff.get(k) or []) or '-'}"
                                              for k in ("added", "removed", "changed"))
            return f"reload failed: {_error(response)}"
        assert name is not None
        response = self.http.post(f"/api/services/{_segment(name)}/{verb}")
        if response.status_code == 202:
            return f"{verb} {name}: accepted ({response.json().get('state')})"
        return f"{verb} {name} failed: {_error(response)}"

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The SSE stream as dicts until it ends. Async, so that the UI can cancel it at
        once when it quits (a thread blocked in a read could not be)."""
        async with httpx.AsyncClient(base_url=self.url, headers=self.http.headers, trust_env=False,
                                     timeout=httpx.Timeout(5.0, read=None)) as http:
            async with http.stream("GET", "/api/events") as response:
                response.raise_for_status()
                kind = "message"
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        try:
                            data = json.loads(line[5:])
                        except ValueError:
                            continue
                        if isinstance(data, dict):
                            data.setdefault("type", kind)
                            yield data

    async def follow_events(self, deliver: Callable[[dict[str, Any]], object],
                            lost: Callable[[str], object]) -> None:
        """Deliver events for ever; a broken stream is reported and reopened, so the UI
        lives through a restart of the supervisor."""
        while True:
            try:
                async for event in self.events():
                    deliver(event)
                lost("event stream ended; reconnecting")
            except httpx.HTTPError as exc:
                lost(f"event stream: {type(exc).__name__}; reconnecting")
            await asyncio.sleep(1.0)   # a reconnect back-off, not a synchronisation

    def close(self) -> None:
        self.http.close()


def describe(event: dict[str, Any]) -> str:
    """One line for the event pane."""
    kind, service = event.get("type", "?"), event.get("service") or "supervisor"
    detail = {"state": event.get("state"), "restart": event.get("reason"),
              "freeze": event.get("kind"), "probe": event.get("probe") or event.get("result")}.get(kind)
    text = f"{service}: {kind}" + (f" {detail}" if detail else "")
    why = event.get("why") or event.get("message") or event.get("error")
    return f"{text} ({why})" if why else text


def _segment(name: str) -> str:
    from urllib.parse import quote
    return quote(name, safe="")


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.text)
    except (ValueError, AttributeError):
        return response.text.strip() or f"HTTP {response.status_code}"
