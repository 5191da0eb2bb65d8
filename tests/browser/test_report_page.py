"""report.html as a person sees it: verdict table on top, every plot a real picture."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from reports import build
from tests.browser.conftest import SCREENSHOTS
from tests.reports.synthetic import outage_run


def test_the_report_renders_its_verdicts_and_non_empty_plots(browser: Browser, tmp_path):
    report = build(outage_run(tmp_path / "run", fault=(10.0, 20.0), back_after=4.0))
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    try:
        page.goto(report.html.resolve().as_uri())
        table = page.locator("#verdicts")
        expect(table).to_be_visible()
        expect(table.locator("tr", has_text="uptime")).to_contain_text("pass")
        box = table.bounding_box()
        assert box is not None and box["y"] < 400, "the verdicts come first"
        images = page.locator("figure img")
        assert images.count() == 4
        for index in range(images.count()):
            width, height = images.nth(index).evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert width > 300 and height > 100, f"plot {index} did not decode"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
    finally:
        page.close()
