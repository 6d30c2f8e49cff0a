"""A campaign measures itself, on the trained world: planned and exported, answered by the world's
customers (their hidden truth), reported; the measured uplift's interval holds the true uplift, the
control group is never contacted, and answering twice changes nothing."""

import datetime as dt
import json

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.settings import Settings
from features.feedback import FeedbackStore
from features.responses import response_truth, snapshot_oracle
from serving.campaign_config import Campaign
from serving.campaign_report import EXPERIMENT, read_export, report_campaign, simulate_campaign
from serving.campaign_response import waves_of
from serving.campaign_run import run_campaign
from serving.champions import load_champions
from telcoml.cli import app

NAME = "keep-summer"
LATER = dt.date(2026, 9, 30)


@pytest.fixture(scope="module")
def answered(trained_world, tmp_path_factory):
    store = tmp_path_factory.mktemp("campaign_feedback") / "feedback.db"
    settings = Settings(workdir=trained_world.settings.workdir, feedback_store_url=f"sqlite:///{store}")
    campaign = Campaign.model_validate(
        {
            "name": NAME,
            "purpose": "retention",
            "province": "GD",
            "start": dt.date(2026, 7, 1),
            "offer": {"en": "Stay with a 20% discount.", "zh": "续约享八折。"},
            "waves": {"max_waves": 3, "days_between": 7},
            "contact_cap": 40,
            "control_share": 0.3,
        }
    )
    run_campaign(settings, load_champions(settings), campaign, export=True)
    path, stored = simulate_campaign(settings, NAME, seed=2)
    return settings, stored, report_campaign(settings, NAME, as_of=LATER)


def test_the_control_group_is_never_contacted(answered):
    settings, stored, _ = answered
    export = read_export(settings, NAME)
    events = FeedbackStore(settings.feedback_store).campaign_events(NAME, "GD")
    assert stored["stored"] == len(events) > 0
    contacts = events[events["type"] == "campaign_contact"]
    assert not set(contacts["msisdn"]) & set(export.control["msisdn"])
    assert not set(export.contacted["msisdn"]) & set(export.control["msisdn"])
    taken = events[events["type"] == "offer_taken"]
    assert set(taken["msisdn"]) & set(export.control["msisdn"])  # some take it uncontacted


def test_the_uplift_interval_holds_the_worlds_true_uplift(answered):
    settings, _, result = answered
    export = read_export(settings, NAME)
    oracle = snapshot_oracle(pd.read_parquet(settings.truth_dir / "oracle" / "GD.parquet"), export.month)
    waves = waves_of(export.contacted)
    contacted = response_truth(export.contacted, oracle, "retention", waves)
    held_out = response_truth(export.control, oracle, "retention", waves)  # no wave plan: uncontacted
    # the estimand: contacted minus uncontacted take-up over the eligible, held out at random
    true_uplift = contacted["p_take_contacted"].mean() - held_out["p_take_uncontacted"].mean()
    o = result.report["overall"]
    assert o["contacted"] == len(export.contacted) and o["control"] == len(export.control)
    assert o["low"] <= true_uplift <= o["high"], (o, true_uplift)
    assert o["low"] > 0  # the campaign works in this world, and the report can tell


def test_waves_shrink_as_answers_close_customers(answered):
    _, _, result = answered
    waves = result.report["by_wave"].set_index("wave")
    assert list(waves.index) == [1, 2, 3]
    closed = waves[["accepted", "declined", "complained", "opted_out"]].sum(axis=1)
    assert waves.loc[2, "attempts"] <= waves.loc[1, "attempts"] - closed.loc[1]
    assert waves["reached"].le(waves["attempts"]).all()
    counts = result.report["by_contact_number"]
    assert counts["attempts"].sum() == waves["attempts"].sum()


def test_the_report_lands_beside_the_weekly_reports_and_in_mlflow(answered):
    settings, _, result = answered
    assert result.directory.parent.parent.parent.name == "monitoring"
    files = ("report.json", "report.html", "campaign_response.png", "by_wave.csv", "by_contact_number.csv")
    for name in files:
        assert (result.directory / name).stat().st_size > 0
    written = json.loads((result.directory / "report.json").read_text())
    assert written["overall"]["uplift"] == pytest.approx(result.report["overall"]["uplift"])
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["campaign"] == NAME
    assert run.data.metrics["uplift"] == pytest.approx(result.report["overall"]["uplift"])
    assert mlflow.get_experiment(run.info.experiment_id).name == EXPERIMENT


def test_answering_again_stores_nothing_and_changes_no_figure(answered):
    settings, _, result = answered
    _, again = simulate_campaign(settings, NAME, seed=2)
    assert again["stored"] == 0 and again["duplicate"] > 0
    same = report_campaign(settings, NAME, as_of=LATER, log_to_mlflow=False)
    assert same.report["overall"] == result.report["overall"]


def test_the_cli_prints_the_uplift_and_a_missing_campaign_is_a_clear_error(answered):
    settings, _, _ = answered
    runner = CliRunner()
    env = {"TELCOML_FEEDBACK_STORE_URL": settings.feedback_store}
    args = ["--as-of", str(LATER), "--no-mlflow-run", "--workdir", str(settings.workdir)]
    out = runner.invoke(app, ["campaign", "report", NAME, *args], env=env)
    assert out.exit_code == 0, out.output
    assert "uplift" in out.output and "contacted" in out.output
    missing = runner.invoke(app, ["campaign", "report", "no-such-campaign", *args], env=env)
    assert missing.exit_code != 0 and "campaign plan" in missing.output


def test_the_second_waves_list_leaves_out_who_answered_the_first(answered):
    settings, _, _ = answered
    runner = CliRunner()
    env = {"TELCOML_FEEDBACK_STORE_URL": settings.feedback_store}
    out = runner.invoke(app, ["campaign", "wave", NAME, "2", "--workdir", str(settings.workdir)], env=env)
    assert out.exit_code == 0, out.output
    listed = pd.read_csv(settings.workdir / "campaigns" / NAME / f"wave_2_{NAME}.csv", dtype={"msisdn": str})
    events = FeedbackStore(settings.feedback_store).campaign_events(NAME, "GD")
    first = events[(events["type"] == "campaign_contact") & (events["wave"] == 1)]
    closed = set(first.loc[first["outcome"] != "reached", "msisdn"])
    assert closed and not closed & set(listed["msisdn"])
    assert 0 < len(listed) < len(read_export(settings, NAME).contacted)
    assert listed.columns[:4].tolist() == ["msisdn", "wave_2_channel", "wave_2_channel_zh", "wave_2_date"]
