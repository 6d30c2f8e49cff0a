"""Headless Chromium (Debian's, ``make install-browser``) driven by Playwright: where the console
tests' screenshots go, and the steps every console test takes (sign in, look a customer up)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.servers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TELCOML_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))


def sign_in(page, url: str, key: str) -> None:
    page.goto(f"{url}/")
    page.fill("#key", key)
    page.click("#sign-in")
    page.wait_for_selector("#msisdn")


def look_up(page, msisdn: str) -> None:
    page.fill("#msisdn", msisdn)
    with page.expect_navigation():
        page.click("#look-up")
