"""Regenerates the screenshots in docs/: the dashboard (docs/screenshot-dashboard.png, by the
e2e test that drives every panel in headless Chromium) and the terminal UI
(docs/screenshot-top.svg from Textual's save_screenshot, rendered to docs/screenshot-top.png
by Chromium), both against a real supervisor running the repository's services.yaml.

    python scripts/screenshots.py            # needs npm ci in frontend/ and services/node-server/
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"


def dashboard() -> None:
    env = {**os.environ, "UPDATE_SCREENSHOT": "1"}
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                    "tests/e2e/test_dashboard.py", "-k", "every_panel"], cwd=ROOT, env=env, check=True)


def top() -> None:
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src"), str(ROOT)]
    from e2e.stack import AppStack  # the test harness's copy of the application

    from unified_system.tui.app import Top
    from unified_system.tui.feed import Feed

    with tempfile.TemporaryDirectory() as tmp, \
            AppStack(Path(tmp), args=("--env", "production")) as app:
        app.wait_healthy()
        feed = Feed(app.api_url, app.api_key())

        async def shoot() -> None:
            tui = Top(feed)
            async with tui.run_test(size=(140, 42)) as pilot:
                deadline = time.monotonic() + 30   # let the table, the log and a sparkline fill
                while time.monotonic() < deadline and len(tui.query("DataTable").first().rows) < 4:
                    await pilot.pause(0.2)
                await pilot.pause(6)
                tui.save_screenshot("screenshot-top.svg", str(DOCS))

        asyncio.run(shoot())
        app.stop()
    svg = DOCS / "screenshot-top.svg"
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(svg.as_uri())
        page.locator("svg").first.screenshot(path=str(DOCS / "screenshot-top.png"))
        browser.close()


if __name__ == "__main__":
    which = sys.argv[1:] or ["dashboard", "top"]
    if "dashboard" in which:
        dashboard()
    if "top" in which:
        top()
