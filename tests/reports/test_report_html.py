"""The HTML report: self-contained (Chart.js inlined from the vendored build, which must equal
the build pinned by tools/charts' lockfile), and its charts really render in headless Chromium
(Debian's /usr/bin/chromium, driven by Playwright) without a console error."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from kassa.reports.html import chart_library, render_report
from kassa.reports.period import Period

if TYPE_CHECKING:
    from conftest import History  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "tools" / "charts"
CHROMIUM = Path(os.environ.get("KASSA_CHROMIUM", "/usr/bin/chromium"))
CANVASES = ("chart-activity", "chart-fees", "chart-fx", "chart-solvency")


def test_vendored_chart_library_is_the_pinned_build() -> None:
    lock = json.loads((CHARTS / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/chart.js"]["version"]
    vendored = chart_library()
    assert re.search(r"Chart\.js v(\S+)", vendored[:200]).group(1) == pinned  # type: ignore[union-attr]
    built = CHARTS / "node_modules" / "chart.js" / "dist" / "chart.umd.js"
    assert built.is_file(), "run ./dev setup (npm ci in tools/charts)"
    assert built.read_text("utf-8") == vendored


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_html_report_renders_its_charts(finance_history: History, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: ./dev setup installs it (apt-get chromium)"
    from playwright.sync_api import sync_playwright

    period = Period.of_month(2026, 11, ZoneInfo("Europe/Berlin"))
    with finance_history.db.transaction() as conn:
        page_html = render_report(conn, period, now=datetime(2026, 12, 5, tzinfo=UTC))
    assert "cdn" not in page_html.lower() and "https://" not in page_html.split("<script>")[0]
    path = tmp_path / "report.html"
    path.write_text(page_html, "utf-8")

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route(
                "**/*",
                lambda route: (
                    route.abort()
                    if not route.request.url.startswith("file:")
                    else route.continue_()
                ),
            )
            page.goto(path.as_uri())
            page.wait_for_function("window.kassaChartsReady === true", timeout=10_000)
            for canvas in CANVASES:
                painted = page.evaluate(
                    """(id) => {
                        const c = document.getElementById(id);
                        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                        let n = 0;
                        for (let i = 3; i < px.length; i += 4) { if (px[i] !== 0) n++; }
                        return {w: c.width, h: c.height, painted: n};
                    }""",
                    canvas,
                )
                assert painted["w"] > 0 and painted["h"] > 0, canvas
                assert painted["painted"] > 1000, (canvas, painted)
            shot = os.environ.get("KASSA_REPORT_SCREENSHOT")
            page.screenshot(path=shot or str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert "2026-11-02" in page_html and "22.772167" in page_html
