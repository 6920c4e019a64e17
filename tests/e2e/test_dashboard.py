"""The dashboard in headless Chromium, served by the Node gateway in production: it lists the
four services, takes the API key, and restarts the bot through the control API.

UPDATE_SCREENSHOT=1 writes the screenshot to docs/screenshot-dashboard.png (else into tmp).
"""

from __future__ import annotations

import os
import shutil

import pytest

from harness import ROOT, wait_until

from .dashboard_page import TIMEOUT_MS, signed_in_page
from .stack import AppStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SERVICES = ["nats", "backend", "trading-bot", "node-server", "frontend"]


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_dashboard_lists_the_services_and_restarts_the_bot(tmp_path, browser):
    from playwright.sync_api import expect

    # A slow liveness period: on a loaded machine the backend may take seconds to listen.
    with AppStack(tmp_path, args=("--env", "production"), env={"HEALTH_CHECK_INTERVAL": "10"}) as app:
        app.wait_healthy()
        app.settled_fills(at_least=2)  # so the trades panel has something to show
        key = app.api_key()
        restarts_before = app.service("trading-bot")["restarts"]

        page = browser.new_page(viewport={"width": 1280, "height": 680})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app.gateway + "/")

        # Nothing of the supervisor is shown before the operator enters its key (from
        # <state_dir>/api_key); the dashboard then reads, streams and acts with it.
        expect(page.get_by_text("Enter the supervisor's API key")).to_be_visible()
        expect(page.get_by_test_id("service-row-backend")).to_have_count(0)
        page.get_by_test_id("api-key-input").fill(key)
        page.get_by_test_id("api-key-save").click()
        expect(page.get_by_text("API key set")).to_be_visible()

        # Every service of services.yaml is listed; production disables the Vite frontend.
        expect(page.get_by_test_id("services-table")).to_be_visible()
        for name in SERVICES:
            expect(page.get_by_test_id(f"service-row-{name}")).to_be_visible()
        for name in ("backend", "trading-bot", "node-server"):
            expect(page.get_by_test_id(f"state-{name}")).to_have_text("running")
        expect(page.get_by_test_id("state-frontend")).to_have_text("disabled")
        restarts = page.get_by_test_id("restarts-trading-bot")
        expect(restarts).to_have_text(str(restarts_before))

        # Restart on the bot's row, with the key entered above.
        page.get_by_test_id("restart-trading-bot").click()

        expect(restarts).to_have_text(str(restarts_before + 1))
        bot = wait_until(lambda: (s := app.service("trading-bot"))["state"] == "running"
                         and s["ready"] and s, 30, "the bot running again",
                         seen=lambda: app.service("trading-bot"))
        assert bot["restarts"] == restarts_before + 1
        assert bot["last_exit"]["reason"] == "manual", bot["last_exit"]
        expect(page.get_by_test_id("state-trading-bot")).to_have_text("running")
        expect(page.get_by_test_id("trades-table").locator("tbody tr").first).not_to_have_text(
            "No trades yet.")

        shot = (ROOT / "docs" / "screenshot-dashboard.png" if os.environ.get("UPDATE_SCREENSHOT")
                else tmp_path / "screenshot-dashboard.png")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        page.close()
        assert app.stop() == 0


def test_every_panel_follows_a_killed_child_a_crash_dump_and_a_log(tmp_path, browser):
    """Kill the bot for real: the restart shows in the timeline and in its chart, its crash
    dump opens, its log tail follows and filters; graph, suggestions and diagnostics show."""
    import signal

    from playwright.sync_api import expect

    with AppStack(tmp_path, args=("--env", "production"), env={"HEALTH_CHECK_INTERVAL": "10"}) as app:
        app.wait_healthy()
        key = app.api_key()
        page = signed_in_page(app, browser, key)
        expect(page.get_by_test_id("state-trading-bot")).to_have_text("running")

        # The graph: dagre-placed nodes coloured by state, edges labelled with the condition.
        graph = page.get_by_test_id("dependency-graph")
        expect(graph.get_by_test_id("node-backend")).to_have_attribute("data-state", "running")
        expect(graph.locator(".edge text").first).to_be_visible()
        expect(page.get_by_test_id("diagnostics").locator(".checks tr").first).to_be_visible()
        expect(page.get_by_test_id("suggestions")).to_be_visible()

        # Open the bot from the graph with the keyboard: its chart and log tail appear.
        graph.get_by_test_id("node-trading-bot").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("service-detail")).to_be_visible()
        before = app.service("trading-bot")
        os.kill(before["pid"], signal.SIGKILL)

        timeline = page.get_by_test_id("timeline")
        expect(timeline.locator("li[data-kind=restart][data-service=trading-bot]").first).to_be_visible()
        expect(page.get_by_test_id("chart-restarts")).to_contain_text(f"restarts {before['restarts'] + 1}")
        expect(page.get_by_test_id("service-chart").locator("canvas")).to_have_count(1)

        # The crash dump of the kill opens, its exit shown.
        crash = page.get_by_test_id("crash-list").locator("button", has_text="trading-bot").first
        crash.click()
        dump = page.get_by_test_id("crash-dump")
        expect(dump).to_contain_text("SIGKILL")
        assert key not in dump.inner_text()

        # The log tail follows: the restarted bot's new lines arrive; a filter narrows them.
        logs = page.get_by_test_id("log-view")
        expect(page.get_by_test_id("log-follow")).to_be_checked()
        wait_until(lambda: logs.evaluate("e => e.scrollHeight - e.scrollTop - e.clientHeight") < 30
                   and logs.inner_text().strip() not in ("", "Loading…"), 30, "the tail followed",
                   seen=lambda: logs.inner_text()[-300:])
        page.get_by_test_id("log-filter").fill("/no line says this 0xdeadbeef/")
        expect(logs).to_have_text("(no line matches)")
        page.get_by_test_id("log-filter").fill("")

        shot = (ROOT / "docs" / "screenshot-dashboard.png" if os.environ.get("UPDATE_SCREENSHOT")
                else tmp_path / "screenshot-dashboard-panels.png")
        page.screenshot(path=str(shot), full_page=True)
        page.close()
        assert app.stop() == 0
