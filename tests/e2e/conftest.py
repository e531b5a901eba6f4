"""Fixtures shared by the browser tests: a headless Chromium and mockehr servers with and without
--auto-approve (module-scoped: each test module gets fresh ones)."""

from __future__ import annotations

import pytest

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.e2e.browser import chromium


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def server():
    """No auto-approve: the login, picker and consent pages are clicked through."""
    with ServerThread(Settings(port=0)) as running:
        yield running


@pytest.fixture(scope="module")
def auto_server():
    with ServerThread(Settings(port=0, auto_approve=True)) as running:
        yield running
