"""Weekly monitoring on a world whose last month drifts (a tariff change, a competitor offer).

The champions are tested on 2026-09. Replayed into the weeks they went live and monitored
against them: 2026-06 (stable: full 12-month windows, no seasonal factor, like September)
and 2026-10 (the drift month). August would not do as the stable month: its summer data
traffic really does move bills, and monitoring rightly says so.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.generate import GeneratorConfig
from tests.conftest import build_world

pytestmark = pytest.mark.slow

DRIFTING = GeneratorConfig(
    customers=1500, months=16, start_month="2025-07", provinces=("GD",), seed=21, drift_month="2026-10"
)
#: What the tariff change moves (features/generate.py): bills and billing inquiries.
MOVED_BY_DRIFT = {"billing_inquiry_count_3m", "bill_change_ratio", "monthly_consumption", "arpu_3m"}


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    from core.tasks import TASKS
    from serving.batch import replay_month
    from training.train import train_task
    from training.tune import TuningBudget

    world = build_world(tmp_path_factory.mktemp("monitoring"), DRIFTING)
    budget = TuningBudget(trials=2, max_rounds=100, seed=3, threads=1)
    for name in TASKS:
        train_task(world.settings, name, budget=budget, train_months=3)
    world.results = {
        "stable": replay_month(world.settings, "2026-06"),
        "drift": replay_month(world.settings, "2026-10"),
    }
    return world


def _run(world, *args):
    from telcoml.cli import app

    return CliRunner().invoke(app, ["monitor", "--workdir", str(world.settings.workdir), *args])


def test_drift_month_alerts_naming_the_moved_indicators(monitored):
    from monitoring.weekly import monitor_week

    week = monitored.results["drift"]
    result = monitor_week(monitored.settings, week)
    alerted = {a["task"] for a in result.alerts}
    assert "tariff_sensitivity" in alerted, result.table().to_string()
    named = {m["indicator"] for a in result.alerts for m in a["moved_indicators"]}
    assert named & MOVED_BY_DRIFT, f"alerts name {named}, none of {MOVED_BY_DRIFT}"
    tariff = next(a for a in result.alerts if a["task"] == "tariff_sensitivity")
    assert tariff["moved_indicators"][0]["indicator"] in MOVED_BY_DRIFT | {"days_since_last_complaint"}
    inquiries = next(m for m in tariff["moved_indicators"] if m["indicator"] == "billing_inquiry_count_3m")
    assert inquiries["change"].startswith("+")  # inquiries went up, as the tariff change makes them
    assert "telcoml train --task tariff_sensitivity" in tariff["action"]
    assert {"province", "task", "week", "breaches"} <= set(tariff)


def test_stable_month_raises_no_alert(monitored):
    from monitoring.weekly import monitor_week

    result = monitor_week(monitored.settings, monitored.results["stable"])
    assert result.alerts == [], result.table().to_string()
    assert len(result.drift) == 5
    for drift in result.drift:  # labels of June have matured: quality is judged
        assert drift.labels_matured > 0
        # churn's AUC needs enough churners (MIN_PER_CLASS); a 1,500-customer world may not have them
        assert drift.quality_current is not None or drift.task == "churn"
    assert all(q.passed for q in result.quality), [q.dimensions for q in result.quality]


def test_cli_exit_codes_and_outputs_that_open(monitored):
    from evidently.ui.workspace import Workspace

    from monitoring.dashboards import dashboard_data

    stable, drift = monitored.results["stable"], monitored.results["drift"]
    assert _run(monitored, "--week", stable).exit_code == 0
    ran = _run(monitored, "--week", drift)
    assert ran.exit_code == 3, ran.output
    assert "ALERT" in ran.output

    reports = monitored.settings.workdir / "monitoring" / "reports" / drift
    html = (reports / "GD" / "tariff_sensitivity.html").read_text()
    assert "<html" in html.lower() and "billing_inquiry_count_3m" in html
    summary = json.loads((reports / "GD" / "tariff_sensitivity.json").read_text())
    assert summary["alert"]["breaches"]
    for breach in summary["alert"]["breaches"]:
        assert breach["value"] >= summary["thresholds"][breach["check"]] == breach["threshold"]
    assert json.loads((reports / "GD" / "data_quality.json").read_text())["dimensions"].keys() == {
        "completeness",
        "accuracy",
        "timeliness",
        "authenticity",
    }
    table = pd.read_csv(reports / "summary.csv")
    assert set(table["status"]) == {"ALERT", "ok"} or set(table["status"]) == {"ALERT"}
    assert (monitored.settings.workdir / "monitoring" / "alerts.jsonl").read_text().count(drift) >= 1

    workspace = Workspace(str(monitored.settings.workdir / "monitoring" / "workspace"))
    project = workspace.search_project("GD · tariff_sensitivity")[0]
    assert len(workspace.list_runs(project.id)) == 4  # a report and its figures per week, re-runs replace
    drawn = dashboard_data(workspace.path)
    assert {"GD · data quality", "GD · tariff_sensitivity", "GD · churn"} <= set(drawn)
    for name, panels in drawn.items():  # every panel draws values from the stored snapshots
        assert panels, f"{name} has no panels"
        for title, series in panels.items():
            assert any(v is not None for s in series.values() for v in s), f"{name} / {title} is empty"
    share = drawn["GD · tariff_sensitivity"]["Prediction drift (distance from the reference)"]
    assert share["pred_tariff_sensitivity drift"][-1] == summary["prediction_drift_score"]  # weeks in order

    mlflow.set_tracking_uri(monitored.settings.tracking_uri)
    runs = mlflow.search_runs(
        experiment_names=["telcoml/monitoring"],
        filter_string=f"tags.week = '{drift}' and tags.task = 'tariff_sensitivity' and tags.province = 'GD'",
    )
    assert len(runs) >= 1 and runs["metrics.drifted_feature_share"].iloc[0] > 0
    assert "ALERT" in runs["tags.mlflow.note.content"].iloc[0]  # the run's description gives the verdict
    client = mlflow.MlflowClient()
    for experiment in client.search_experiments():  # monitoring runs are not mixed into training's
        found = client.search_runs([experiment.experiment_id], max_results=1000)
        assert found or experiment.name == "Default", f"{experiment.name} is empty"
        weekly = [r for r in found if r.data.tags.get("monitoring") == "weekly"]
        assert len(weekly) == (len(found) if experiment.name == "telcoml/monitoring" else 0), experiment.name
    assert mlflow.MlflowClient().get_model_version("telcoml-tariff_sensitivity", "1").tags[
        "monitoring.last_week"
    ] in (stable, drift)


#: A day by which the drift month's outcomes are known (its month end + LABEL_DELAY): the
#: outcome-rate check runs whatever the day the tests run (it did not before 2026-12-01).
OUTCOMES_KNOWN = date(2026, 12, 15)


def test_thresholds_come_from_configuration(monitored):
    from monitoring.weekly import monitor_week

    week = monitored.results["drift"]
    strict = monitor_week(monitored.settings, week, today=OUTCOMES_KNOWN, log_to_mlflow=False)
    assert {b["check"] for a in strict.alerts for b in a["breaches"]} >= {"outcome_rate_change"}
    lenient = monitored.settings.model_copy(
        update={
            "drifted_feature_share": 1.0,
            "prediction_drift_score": 10.0,
            "quality_drop": 1.0,
            "outcome_rate_change": 10.0,
        }
    )
    result = monitor_week(lenient, week, today=OUTCOMES_KNOWN, log_to_mlflow=False)
    assert result.alerts == []


def test_a_province_file_sets_its_own_thresholds(monitored, tmp_path):
    from monitoring.weekly import monitor_week, thresholds_for

    provinces = tmp_path / "provinces"
    provinces.mkdir()
    (provinces / "GD.yaml").write_text(
        "province: GD\ndrift_thresholds:\n  drifted_feature_share: 0.9\n"
        "  prediction_drift_score: 5\n  quality_drop: 0.5\n  outcome_rate_change: 10\n"
    )
    settings = monitored.settings.model_copy(update={"provinces_dir": provinces})
    assert thresholds_for(settings, "GD").prediction_drift_score == 5
    assert thresholds_for(settings, "HE") == thresholds_for(monitored.settings, "HE")  # no file: the defaults
    result = monitor_week(settings, monitored.results["drift"], today=OUTCOMES_KNOWN, log_to_mlflow=False)
    assert result.alerts == []


def test_a_week_without_records_is_a_clear_error(monitored):
    from core.errors import NotReadyError
    from monitoring.weekly import monitor_week

    with pytest.raises(NotReadyError, match=r"no scores recorded for week 2026-W02.*weeks with records"):
        monitor_week(monitored.settings, "2026-W02")
    ran = _run(monitored, "--week", "2026-W02")
    assert ran.exit_code == 1 and "no scores recorded" in ran.output and "Traceback" not in ran.output
    assert _run(monitored, "--week", "2026-13").exit_code == 1


def test_the_evidently_ui_shows_the_weekly_snapshots(monitored):
    """The real Evidently UI on the workspace lists a project per province and task, with its weeks."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from monitoring.weekly import monitor_week

    monitor_week(monitored.settings, monitored.results["stable"], log_to_mlflow=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace = monitored.settings.workdir / "monitoring" / "workspace"
    evidently = Path(sys.executable).with_name("evidently")  # the console script beside this Python
    log = workspace.parent / "evidently-ui.log"
    ui = subprocess.Popen(
        [str(evidently), "ui", "--workspace", str(workspace), "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, projects = time.monotonic() + 180, None
        while time.monotonic() < deadline and projects is None and ui.poll() is None:
            try:
                projects = httpx.get(f"http://127.0.0.1:{port}/api/projects", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                time.sleep(1)
        assert projects is not None, f"the Evidently UI did not start: {log.read_text()[-2000:]}"
        names = {p["name"]: p["id"] for p in projects}
        assert {"GD · tariff_sensitivity", "GD · data quality"} <= set(names)
        snapshots = httpx.get(
            f"http://127.0.0.1:{port}/api/projects/{names['GD · tariff_sensitivity']}/snapshots", timeout=10
        ).json()
        assert monitored.results["stable"] in {s.get("name") for s in snapshots}
    finally:
        ui.terminate()
        ui.wait(20)
