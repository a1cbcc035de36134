"""``report.html`` in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright's Python client, no browser download) loads it without a console error, decodes every
picture, shows the verdict, and sorts a table; the screenshot is saved as ``report.png`` next to it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.results import load_results
from harness.testing.synthetic import synthetic_run

CHROMIUM = os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium; .ci/run does)"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
    from harness_plugins.reporters.compare import CompareReporter

    strategies = [{"space": "nb201", "algorithm": a, "sampler": "tpe", "pruner": p, "skill": s}
                  for a, s in (("random", 0.0), ("rea", 0.02), ("npenas", 0.05)) for p in ("none", "median")]
    run = synthetic_run(tmp_path / "run", strategies, seeds=range(8), trials=15, generator=True)
    CompareReporter().report(load_results(run), run)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto((run / "report.html").as_uri(), wait_until="load")
            images = page.evaluate("""() => Array.from(document.images).map(
                i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])""")
            assert len(images) >= 4
            assert all(complete and width > 0 and height > 0 for _, complete, width, height in images), images
            verdict = page.locator("#verdict")
            assert verdict.is_visible() and "beats" in verdict.inner_text()
            first_table = page.locator("table.sortable").first
            header = first_table.locator("th").nth(1)  # "problems"
            before = first_table.locator("tbody tr td").first.inner_text()
            header.click()
            header.click()
            assert first_table.locator("tbody tr").count() == 6 and before
            page.screenshot(path=str(run / "report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert (run / "report.png").stat().st_size > 10_000


def test_tables_fit_a_1400_px_window(tmp_path: Path) -> None:
    """Neither page scrolls sideways at 1400 px, nor does any table inside its box, with long strategy
    names (every strategy axis varies) and the summary's 18 columns."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
    from harness_plugins.reporters.compare import CompareReporter
    from harness_plugins.reporters.plots import PlotsReporter

    strategies = [{"space": space, "algorithm": a, "sampler": sampler, "pruner": p, "generator": generator, "skill": s}
                  for a, s in (("random", 0.0), ("regularized-evolution", 0.02)) for p in ("none", "median")
                  for space, sampler, generator in (("nb201", "tpe", "manual"),
                                                    ("darts-like", "random", "autospace-generator"))]
    run = synthetic_run(tmp_path / "run", strategies, datasets=("nb201-cifar100", "nb201-imagenet16-120"),
                        seeds=range(6), trials=10, generator=True)
    results = load_results(run)
    CompareReporter().report(results, run)
    PlotsReporter().report(results, run)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for name in ("report.html", "plots.html"):
                page.goto((run / name).as_uri(), wait_until="load")
                assert page.evaluate("() => document.documentElement.scrollWidth") <= 1400, name
                widths = page.evaluate("""() => Array.from(document.querySelectorAll('table')).map(
                    t => [t.scrollWidth, t.parentElement.clientWidth])""")
                assert widths and all(table <= box for table, box in widths), (name, widths)
        finally:
            browser.close()
