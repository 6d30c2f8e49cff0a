"""Bring your own data end to end: a CSV with its own column names -> gate -> store -> train -> serve
-> batch CRM file -> weekly report, a category indicator of the province's own data included."""

import json

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.settings import Settings
from monitoring.weekly import monitor_week
from serving.batch import replay_month
from serving.security import create_key
from telcoml import cli
from telcoml.cli import app
from tests.byod_data import PROVINCE_FILE, write_case
from tests.servers import Server


@pytest.fixture(scope="module")
def byod_world(tiny_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("byod")
    settings = Settings(workdir=root / "work")
    settings.provinces_dir.mkdir(parents=True)
    (settings.provinces_dir / "ZJ.yaml").write_text(PROVINCE_FILE)
    mapping = write_case(tiny_world, root / "zj")
    return settings, mapping


def test_a_province_csv_trains_and_serves_without_synthetic_data(byod_world, monkeypatch):
    settings, mapping = byod_world
    monkeypatch.setattr(cli.console, "width", 240)
    result = CliRunner().invoke(
        app, ["byod", str(mapping), "--train", "--trials", "2", "--workdir", str(settings.workdir)]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "passed the gate" in text and "labels for: credit_grade, churn" in text
    assert "credit_grade (ZJ)" in text and "churn (ZJ)" in text and "tariff_sensitivity" not in text
    assert not settings.truth_dir.exists()

    key = create_key(settings, "crm-zj", "ZJ")
    server = Server(settings.workdir)
    try:
        source = pd.read_csv(mapping.parent / "zj_customers.csv", dtype=str)
        msisdn = source.loc[source["TJ_YF"] == source["TJ_YF"].max(), "SHOUJI_HAO"].iloc[0]
        r = httpx.post(f"{server.url}/score", json={"msisdn": msisdn}, headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["province"] == "ZJ"
        assert body["models"] == {
            "credit_grade": "models:/telcoml-credit_grade-zj/1",
            "churn": "models:/telcoml-churn-zj/1",
        }
        assert body["credit_grade"]["code"] in range(1, 6) and 0 <= body["churn"]["probability"] <= 1
        assert "tariff_sensitivity" not in body and "channel_preference" not in body
        assert any(g["topic"] == "complaint_handling" for g in body["guidance"])
        # the province's own category indicator reached the served models, encoded by its codes
        assert "local_segment" in _model_indicators(settings, "telcoml-credit_grade-zj")
    finally:
        server.stop()

    # the batch CRM file: every customer of the latest month, graded with the category indicator
    months = sorted(source["TJ_YF"].unique())
    latest = f"{months[-1][:4]}-{months[-1][4:]}"
    batch = CliRunner().invoke(
        app, ["batch-score", "--province", "ZJ", "--month", latest, "--workdir", str(settings.workdir)]
    )
    assert batch.exit_code == 0, batch.output
    crm = pd.read_parquet(settings.workdir / "crm_interface" / f"crm_ZJ_{latest}.parquet")
    assert len(crm) == (source["TJ_YF"] == months[-1]).sum() and crm["credit_grade"].notna().all()

    # the weekly report tests the category indicator's drift against the champion's reference
    week = replay_month(settings, f"{months[-2][:4]}-{months[-2][4:]}")
    result = monitor_week(settings, week, tasks=["credit_grade", "churn"], log_to_mlflow=False)
    drift = next(d for d in result.drift if (d.province, d.task) == ("ZJ", "credit_grade"))
    assert "local_segment" in drift.feature_scores, result.skipped
    summary = json.loads((result.report_dir / "ZJ" / "credit_grade.json").read_text())
    assert "local_segment" in summary["feature_scores"]


def _model_indicators(settings: Settings, registered: str) -> list[str]:
    """The indicators a registered champion reads (its saved indicator list)."""
    from training.registry import configure_mlflow, load_task_model

    configure_mlflow(settings, "telcoml/test")
    return load_task_model(f"models:/{registered}@champion").task.feature_names
