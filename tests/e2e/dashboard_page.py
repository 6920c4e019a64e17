"""What every dashboard test does first: open the gateway's page and enter the API key."""

from __future__ import annotations

from typing import Any

TIMEOUT_MS = 30_000   # each expect(); the dashboard's first paint on a loaded 2-core machine


def signed_in_page(app: Any, browser: Any, key: str, height: int = 900) -> Any:
    """A new page on `app`'s gateway (an AppStack) with `key` entered and saved, as an
    operator does on first visit."""
    page = browser.new_page(viewport={"width": 1280, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app.gateway + "/")
    page.get_by_test_id("api-key-input").fill(key)
    page.get_by_test_id("api-key-save").click()
    return page
