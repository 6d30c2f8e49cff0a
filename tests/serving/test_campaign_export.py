"""`telcoml campaign plan` on the trained world: the preview, the exported list's columns, the control
group kept out of it, the suppressed file masked; every output under tmp_path."""

import datetime as dt

import pandas as pd
import pytest
from typer.testing import CliRunner

from core import indicators as lib
from core.settings import Settings
from serving.campaign_config import Campaign
from serving.campaign_run import run_campaign
from serving.campaigns import SUPPRESSION_REASONS
from serving.champions import load_champions
from telcoml.cli import app

runner = CliRunner()

YAML = """name: care-summer
purpose: care
province: GD
start: 2026-07-01
offer: {en: "A thank-you gift of 10 yuan of credit.", zh: "感恩回馈：赠送10元话费。", gift_yuan: 10}
waves: {max_waves: 3, days_between: 5}
contact_cap: 8
control_share: 0.2
"""


@pytest.fixture(scope="module")
def exported(trained_world, tmp_path_factory):
    settings = Settings(workdir=trained_world.settings.workdir)
    out = tmp_path_factory.mktemp("campaign")
    c = Campaign.model_validate(
        {
            "name": "care-summer",
            "purpose": "care",
            "province": "GD",
            "start": dt.date(2026, 7, 1),
            "offer": {"en": "A gift.", "zh": "赠送话费。", "gift_yuan": 10},
            "waves": {"max_waves": 3, "days_between": 5},
            "contact_cap": 8,
            "control_share": 0.2,
        }
    )
    return run_campaign(settings, load_champions(settings), c, export=True, output_dir=out), out


def test_the_preview_counts_add_up(exported):
    result, _ = exported
    p = result.preview
    assert p["selected"] == p["customers"] > 0  # no targets: every customer of the province
    assert sum(p["suppressed"].values()) + p["control"] + p["to_contact"] == p["selected"]
    assert p["to_contact"] > 0 and p["control"] > 0
    assert set(p["profile"]) == {"brand", "customer_category", "credit_grade", "churn_band", "best_channel"}


def test_the_export_has_the_wave_plan_and_never_the_control_group(exported):
    result, out = exported
    listed = pd.read_parquet(out / "campaign_care-summer.parquet")
    csv = pd.read_csv(out / "campaign_care-summer.csv", dtype={"msisdn": str})
    assert len(listed) == len(csv) == result.preview["to_contact"]
    for column in (
        "msisdn",
        "campaign",
        "wave_1_channel",
        "wave_1_date",
        "wave_3_channel",
        "wave_3_date",
        "contacts_3m",
        "contact_cap",
        "talking_points_zh",
        "talking_points_en",
        "offer_zh",
        "offer_en",
    ):
        assert column in listed
    assert "wave_4_channel" not in listed and (listed["contacts_3m"] < listed["contact_cap"]).all()
    assert set(listed["wave_1_channel"]) <= set(lib.CHANNELS)
    assert (pd.to_datetime(listed["wave_2_date"]) == pd.Timestamp("2026-07-06")).all()
    assert listed["talking_points_zh"].str.len().gt(0).all()
    assert not listed["talking_points_zh"].str.contains("|".join(lib.CHANNELS)).any()
    control = pd.read_parquet(out / "control_care-summer.parquet")
    assert len(control) == result.preview["control"] and not set(control["msisdn"]) & set(listed["msisdn"])
    suppressed = pd.read_csv(out / "suppressed_care-summer.csv", dtype=str)
    assert len(suppressed) == sum(result.preview["suppressed"].values())
    assert suppressed["msisdn"].str.fullmatch(r"1\d\d\*{4}\d{4}").all()
    assert set(suppressed["reason"]) <= set(SUPPRESSION_REASONS)
    # credit-poor customers get no goodwill gift
    assert not set(result.plan.selected.query("credit_grade <= 2")["msisdn"]) & set(listed["msisdn"])
    assert (out / "campaign_care-summer.parquet").stat().st_mode & 0o077 == 0


def test_the_command_previews_and_exports_to_the_folder_asked(trained_world, tmp_path):
    definition = tmp_path / "care.yaml"
    definition.write_text(YAML, encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["campaign", "plan", str(definition), "--export", "--output-dir", str(out)]
        + ["--workdir", str(trained_world.settings.workdir)],
    )
    assert result.exit_code == 0, result.output
    assert "to contact" in result.output and "contact_cap" in result.output
    assert (out / "campaign_care-summer.csv").exists() and (out / "control_care-summer.parquet").exists()
    bad = runner.invoke(app, ["campaign", "plan", str(definition), "--control-share", "0.7"])
    assert bad.exit_code == 1 and "control_share" in bad.output
