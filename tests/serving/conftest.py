"""The console's fixtures: ``telcoml console`` on the trained world, and a headless browser with
a fresh tab per test (its screenshot kept under ``tests/artifacts/``)."""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS, CHROMIUM
from tests.servers import ConsoleServer


@pytest.fixture(scope="module")
def console(trained_world, keys):
    srv = ConsoleServer(trained_world.settings.workdir)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():  # CI installs it (make install-browser): missing is a failure, not a skip
        pytest.fail(f"{CHROMIUM} is missing: run `make install-browser`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request):
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
