"""The message-bus panel in headless Chromium against the real application under a real
supervisor (issue 18, item 5): live fills, each stream's depth and consumer lag, and the
dead-letter queue with its Re-queue and Drop buttons."""

from __future__ import annotations

import httpx
import pytest

from harness import wait_until

from .dashboard_page import TIMEOUT_MS, signed_in_page
from .stack import AppStack
from .test_dashboard import browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_dashboard_shows_live_fills_queue_depth_and_the_dead_letter_queue(tmp_path, browser):  # noqa: F811
    from playwright.sync_api import expect

    env = {"AI_ENABLED": "true", "AI_MAX_ATTEMPTS": "2", "AI_BACKOFF_INITIAL": "0.05"}
    with AppStack(tmp_path, args=("--env", "production"), env=env) as app:
        app.wait_healthy(timeout=180)
        app.settled_fills(at_least=2, timeout=60)
        token = (app.state_dir / "secrets" / "LEDGER_TOKEN").read_text().strip()
        answer = httpx.post(app.backend + "/api/tasks", json={"type": "fail", "priority": "high"},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 201, answer.text
        task_id = answer.json()["id"]

        page = signed_in_page(app, browser, app.api_key())

        expect(page.get_by_test_id("bus-live")).to_have_text("live")
        # Fills arrive as the bot publishes them (the bot ticks every 50 ms here).
        expect(page.get_by_test_id("bus-fills").locator("li").first).to_contain_text("@")
        expect(page.get_by_test_id("bus-fills")).not_to_contain_text("No fills yet.")
        # Depth and lag of every stream: fills, tasks (one consumer per priority), the DLQ.
        expect(page.locator('[data-testid^="depth-FILLS"]').first).to_be_visible()
        expect(page.get_by_test_id("depth-TASKS-tasks-high")).to_be_visible()
        expect(page.get_by_test_id("depth-TASKS_DLQ")).to_be_visible()

        # The failing task is dead-lettered after 2 attempts and listed; Re-queue sends it
        # back (it fails again: a new task), Drop removes it.
        rows = page.get_by_test_id("dlq-table").locator("tbody tr")
        dead = rows.filter(has_text="always fails")
        expect(dead).to_have_count(1)
        expect(dead.locator("td").first).to_have_text(str(task_id))
        dead.get_by_role("button", name="Re-queue").click()
        # The re-queued copy is a new task (a new id) and dies again.
        expect(dead.locator("td").first).not_to_have_text(str(task_id), timeout=TIMEOUT_MS)
        expect(dead).to_have_count(1)
        dead.get_by_role("button", name="Drop").click()
        expect(page.get_by_test_id("dlq-table")).to_contain_text("Empty.")
        dlq = wait_until(lambda: httpx.get(app.backend + "/api/tasks/dead-letter", timeout=5).json(),
                         10, "the DLQ read")
        assert dlq["tasks"] == []
