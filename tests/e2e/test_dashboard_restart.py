"""Issue 19: the dashboard survives a restart of the supervisor. In headless Chromium, the page
served by the Node gateway stays open while the supervisor stops (taking the gateway and every
service with it) and starts again on the same ports, config and state dir. Without a reload,
the page reconnects to the event stream, takes the new snapshot (the new pids in the state
table), marks the reconnect in the timeline, and its charts go on with the new samples."""

from __future__ import annotations

import pytest

from harness import wait_until

from .dashboard_page import signed_in_page
from .stack import AppStack
from .test_dashboard import browser  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(420)]

PID_COLUMN = 7   # ServiceTable: name, state, ready, health, restarts, memory, uptime, pid


def test_the_dashboard_reconnects_and_replays_after_the_supervisor_restarts(tmp_path, browser):  # noqa: F811
    from playwright.sync_api import expect

    with AppStack(tmp_path, args=("--env", "production"), env={"HEALTH_CHECK_INTERVAL": "10"}) as app:
        app.wait_healthy()
        page = signed_in_page(app, browser, app.api_key())
        banner = page.get_by_test_id("status-banner")
        expect(banner).to_contain_text("● live")

        old = app.services()
        pid_cell = page.get_by_test_id("service-row-backend").locator("td").nth(PID_COLUMN)
        expect(pid_cell).to_have_text(str(old["backend"]["pid"]))
        page.get_by_test_id("open-backend").click()
        chart = page.get_by_test_id("service-chart")
        expect(chart.locator("canvas")).to_have_count(1)
        page.evaluate("window.__sameDocument = true")   # gone if anything reloads the page

        assert app.stop() == 0
        expect(banner).to_contain_text("○ polling", timeout=60_000)   # the stream is down
        points = int(chart.get_attribute("data-points") or 0)
        sparks = int(page.get_by_test_id("spark-rss-backend").get_attribute("data-points") or 0)
        timeline = page.get_by_test_id("timeline")
        expect(timeline.locator("li[data-kind=reconnect]")).to_have_count(0)

        app._out.close()
        app.start()   # the same command: same config, state dir (and so API key) and ports
        new = app.wait_healthy(120)
        assert new["backend"]["pid"] != old["backend"]["pid"]

        # The stream is retried with back-off up to 10 s; the new snapshot fills the table.
        expect(banner).to_contain_text("● live", timeout=60_000)
        expect(pid_cell).to_have_text(str(new["backend"]["pid"]), timeout=60_000)
        for name in ("backend", "trading-bot", "node-server"):
            expect(page.get_by_test_id(f"state-{name}")).to_have_text("running")
        expect(timeline.locator("li[data-kind=reconnect]")).to_have_count(1)
        expect(timeline.locator("li[data-kind=reconnect]")).to_contain_text("snapshot replayed")

        # The charts go on from where they were, with the new supervisor's samples.
        wait_until(lambda: int(chart.get_attribute("data-points") or 0) >= points + 2, 60,
                   "new samples in the backend's chart", seen=lambda: chart.get_attribute("data-points"))
        wait_until(lambda: int(page.get_by_test_id("spark-rss-backend").get_attribute("data-points")
                               or 0) >= sparks + 2, 60, "new samples in the sparkline")
        expect(page.get_by_test_id("chart-restarts")).to_contain_text(
            f"restarts {new['backend']['restarts']}")
        assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
        page.close()
        assert app.stop() == 0
