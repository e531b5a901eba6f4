"""Headless Chromium for the browser tests: Debian's chromium driven by Playwright for Python.

`playwright install` cannot download a browser here, so the tests launch /usr/bin/chromium
(.ci/run installs it). A module calls `playwright_api()` at import: it answers the sync API, or
skips the whole module with the reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/shots")  # screenshots the tests take, to look at


def playwright_api():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package 'chromium'); the browser tests need it",
                    allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                                             "(pip install -e '.[test]')")


@contextmanager
def chromium():
    """A running headless Chromium (use it in a module-scoped fixture)."""
    with playwright_api().sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()
