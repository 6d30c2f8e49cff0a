"""The console's campaign pages end to end on the trained world, in headless Chromium: a GD key plans
a campaign, exports it and downloads the outbound list (its rows are the customers to contact, all
of GD); the world answers it and the report page shows the measured uplift; a GD key can neither
open nor download a Hebei campaign."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pytest

from serving.campaign_config import Campaign
from serving.campaign_report import report_campaign, simulate_campaign
from serving.campaign_run import run_campaign
from serving.champions import load_champions
from tests.browser import ARTIFACTS, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]
NAME = "console-gd-keep"


def _count(tab, key: str) -> int:
    return int(tab.inner_text(f"#count-{key}").replace(",", ""))


@pytest.fixture(scope="module")
def exported(console, chromium, keys):
    """The GD campaign planned and exported in the browser, and the downloaded CSV."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    sign_in(tab, console.url, keys["GD"])
    tab.goto(f"{console.url}/campaign-plan")
    assert tab.input_value("#province") == "GD"
    tab.fill("#name", NAME)
    tab.fill("#offer-zh", "续约享八折。")
    tab.fill("#offer-en", "Stay with a 20% discount.")
    tab.fill("#contact-cap", "40")
    tab.fill("#control-share", "0.9")  # refused, the key named beside the field
    with tab.expect_navigation():
        tab.click("#preview")
    assert "control_share" in tab.inner_text('.field-error[data-field="control_share"]')
    assert tab.inner_text("#count-to_contact") == "—"
    tab.fill("#control-share", "0.3")
    with tab.expect_navigation() as shown:
        tab.click("#preview")
    print("preview:", shown.value.headers.get("server-timing"))
    preview = {k: _count(tab, k) for k in ("selected", "suppressed", "control", "to_contact")}
    assert preview["selected"] == preview["suppressed"] + preview["control"] + preview["to_contact"]
    excluded = sum(int(c) for c in tab.locator("#exclusions td.count").all_inner_texts())
    assert excluded == preview["suppressed"]
    tab.wait_for_selector('#profile-chart[data-drawn="1"]')
    with tab.expect_navigation() as shown:
        tab.click("#export")
    print("export:", shown.value.headers.get("server-timing"))
    assert _count(tab, "to_contact") == preview["to_contact"] > 0
    with tab.expect_download() as download:
        tab.click("#download")
    text = open(download.value.path(), encoding="utf-8").read()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "console_campaign_plan.png"), full_page=True)
    yield preview, pd.read_csv(io.StringIO(text), dtype={"msisdn": str}), tab
    context.close()


def test_build_and_download_a_campaign_list(exported, trained_world):
    preview, rows, _ = exported
    assert len(rows) == preview["to_contact"]
    assert rows["msisdn"].is_unique
    assert set(rows["province"]) == {"GD"} and set(rows["campaign"]) == {NAME}
    gd = set(trained_world.labels.loc[trained_world.labels["province"] == "GD", "msisdn"].astype(str))
    assert set(rows["msisdn"]) <= gd


def test_a_report_page_shows_the_measured_uplift(exported, trained_world, console):
    _, _, tab = exported
    settings = trained_world.settings
    simulate_campaign(settings, NAME, seed=3)
    tab.goto(f"{console.url}/campaigns")
    with tab.expect_navigation() as shown:
        tab.click(f'tr[data-campaign="{NAME}"] a.open-report')
    print("report:", shown.value.headers.get("server-timing"))
    expected = report_campaign(settings, NAME, log_to_mlflow=False).report["overall"]
    assert tab.inner_text("#uplift") == f"{100 * expected['uplift']:.1f}%"
    assert f"{100 * expected['low']:.1f}%" in tab.inner_text("#interval")
    assert f"{100 * expected['high']:.1f}%" in tab.inner_text("#interval")
    assert tab.inner_text("#rate-control") == f"{100 * expected['rate_control']:.1f}%"
    assert tab.locator("#by-wave tr[data-wave]").count() >= 1
    assert tab.locator("#by-channel tr[data-channel]").count() >= 1
    tab.wait_for_selector('#uplift-chart[data-drawn="1"]')
    tab.screenshot(path=str(ARTIFACTS / "console_campaign_report.png"), full_page=True)


def test_a_gd_key_cannot_open_or_download_a_hebei_campaign(exported, trained_world, console):
    _, _, tab = exported
    settings = trained_world.settings
    hebei = Campaign.model_validate(
        {
            "name": "console-he-care",
            "purpose": "care",
            "province": "HE",
            "start": dt.date(2026, 7, 1),
            "offer": {"en": "A free data pack.", "zh": "赠送流量包。"},
        }
    )
    run_campaign(settings, load_champions(settings), hebei, export=True)
    tab.goto(f"{console.url}/campaigns")
    assert tab.locator('tr[data-campaign="console-he-care"]').count() == 0
    assert tab.locator(f'tr[data-campaign="{NAME}"]').count() == 1
    response = tab.goto(f"{console.url}/campaigns?name=console-he-care")
    assert response.status == 404 and tab.locator("#report").count() == 0
    assert tab.request.get(f"{console.url}/campaigns/console-he-care/download").status == 404
    assert tab.request.get(f"{console.url}/campaigns/..%2Fetc/download").status == 404
    assert tab.request.get(f"{console.url}/campaigns/{NAME}/download").status == 200
