"""A graceful drain for uvicorn, for rolling restarts on a socket shared with the next
incarnation.

On SIGTERM plain uvicorn closes every idle keep-alive connection at once: a client that
sends its next request on one at that moment gets a read error, whatever the supervisor
does (wrk -c20 saw one per connection per restart). Here the old process instead stops
accepting (the kernel hands new connections to the next incarnation) and answers each open
connection's next request with `Connection: close`, after which uvicorn closes it; a
connection that sends nothing within the drain deadline is closed then, as uvicorn's own
keep-alive timeout would have closed it. gunicorn's workers behave so already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]
CLOSE = (b"connection", b"close")
POLL = 0.02  # how often the drain looks whether the open connections are gone


class Drain:
    """Shared by the server (which starts the drain) and the app wrapper (which closes)."""

    def __init__(self) -> None:
        self.on = False

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def draining_app(scope: Scope, receive: Callable[[], Awaitable[Message]],
                               send: Callable[[Message], Awaitable[None]]) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_closing(message: Message) -> None:
                if self.on and message["type"] == "http.response.start":
                    headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                    message = {**message, "headers": [*headers, CLOSE]}
                await send(message)

            await app(scope, receive, send_closing)
        return draining_app

    async def run(self, servers: list[asyncio.AbstractServer], connections: set[Any],
                  deadline: float) -> None:
        """Stop accepting, then wait (up to `deadline` seconds) until every open connection
        has had its next request answered with `Connection: close` and is closed."""
        self.on = True
        for server in servers:
            server.close()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline
        while connections and loop.time() < give_up:
            await asyncio.sleep(POLL)
