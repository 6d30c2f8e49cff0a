"""What the operations team opens: the Evidently dashboards (every project has panels, and what
the UI draws comes from the stored snapshots, read through Evidently's own storage as `evidently
ui` reads it) and the monitoring runs' descriptions in MLflow."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import RowCount
from evidently.sdk.panels import text_panel

from core.settings import Settings
from monitoring.dashboards import (
    EvidentlyProjects,
    dashboard_data,
    quality_project,
    task_panels,
    task_project,
)
from monitoring.data_quality import DIMENSIONS, QualityResult
from monitoring.drift import TaskDrift, Thresholds

WEEKS = {"2026-W45": datetime(2026, 11, 2, tzinfo=UTC), "2026-W46": datetime(2026, 11, 9, tzinfo=UTC)}


def _drift(week: str, share: float, prediction: float, quality: float | None) -> TaskDrift:
    return TaskDrift(
        task="churn",
        province="GD",
        week=week,
        model="telcoml-churn",
        version="3",
        rows_current=1200,
        rows_reference=2000,
        drifted_features=round(share * 13),
        features=13,
        drifted_feature_share=share,
        prediction_drift_score=prediction,
        labels_matured=0 if quality is None else 900,
        quality_metric=None if quality is None else "roc_auc",
        quality_current=quality,
        quality_champion=None if quality is None else 0.81,
        outcome_observed=None if quality is None else 0.047,
        outcome_expected=None if quality is None else 0.026,
        target_drift_score=None if quality is None else 0.05,
    )


def _quality(week: str, accuracy_failed: int) -> QualityResult:
    dimensions = {d: {"passed": 10, "failed": 0, "failures": []} for d in DIMENSIONS}
    dimensions["accuracy"] = {"passed": 10 - accuracy_failed, "failed": accuracy_failed, "failures": []}
    return QualityResult("GD", week, 1200, dimensions)


def _report(week: str):
    """A small real report standing in for the week's drift or data-quality report."""
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    definition = DataDefinition(numerical_columns=["x"])
    dataset = Dataset.from_pandas(frame, data_definition=definition)
    return Report([RowCount()]).run(dataset, timestamp=WEEKS[week])


def _monitor(settings: Settings) -> EvidentlyProjects:
    """Two weeks as the weekly job adds them: 0.308 then 0.559 of the indicators drifted;
    labels matured for the first week only."""
    projects = EvidentlyProjects(settings)
    thresholds = Thresholds()
    for (week, stamp), share, prediction, quality, failed in zip(
        WEEKS.items(), (0.308, 0.559), (0.04, 0.21), (0.79, None), (0, 2)
    ):
        projects.add_task_week(_drift(week, share, prediction, quality), thresholds, _report(week), stamp)
        projects.add_quality_week(_quality(week, failed), _report(week), stamp)
    return projects


@pytest.fixture()
def workspace(tmp_path):
    settings = Settings(workdir=tmp_path)
    projects = _monitor(settings)
    return settings, projects


def test_every_project_draws_the_weeks_figures(workspace):
    _, projects = workspace
    drawn = dashboard_data(projects.path)
    assert set(drawn) == {task_project("GD", "churn"), quality_project("GD")}
    for name, panels in drawn.items():
        assert panels, f"{name}: no panels"
        for title, series in panels.items():
            values = [v for s in series.values() for v in s if v is not None]
            assert values, f"{name} / {title}: the panel draws nothing"

    task = drawn[task_project("GD", "churn")]
    shares = task["Indicators drifted (share of the model's indicators)"]
    assert shares["drifted share"] == [0.308, 0.559]
    assert shares["alert threshold"] == [0.3, 0.3]  # the threshold drawn as a constant series
    assert shares["0 (axis)"] == [0.0, 0.0] and shares["1 (axis)"] == [1.0, 1.0]
    assert task["Prediction drift (distance from the reference)"]["alert threshold"] == [0.15, 0.15]
    quality = task["Model quality (AUC) once labels mature"]
    assert quality["AUC this week"][0] == 0.79
    assert quality["AUC of the champion, held-out customers"][0] == 0.81
    assert quality["alert below (drop threshold)"][0] == pytest.approx(0.81 * 0.9)
    assert task["Event rate once labels mature"]["observed"][0] == 0.047

    failed = drawn[quality_project("GD")]["Failed checks per dimension, by week"]
    assert set(failed) == set(DIMENSIONS)
    assert failed["accuracy"] == [0.0, 2.0] and failed["timeliness"] == [0.0, 0.0]


def test_a_second_run_adds_no_panel_and_replaces_the_weeks_snapshots(workspace):
    settings, projects = workspace
    ws = projects.workspace
    churn = ws.search_project(task_project("GD", "churn"))[0]
    before = ws.get_dashboard(churn.id)
    ws.save_dashboard(churn.id, before.copy(update={"panels": [*before.panels, text_panel("our notes")]}))
    runs = len(ws.list_runs(churn.id))
    assert runs == 4  # two weeks, a report and its figures each

    again = _monitor(settings)
    after = again.workspace.get_dashboard(churn.id)
    titles = [p.title for p in after.panels]
    assert len(titles) == len(set(titles)) == len(task_panels("churn")) + 1
    assert "our notes" in titles  # a user's own panel is kept
    assert [p.id for p in after.panels] == [p.id for p in before.panels] + [after.panels[-1].id]
    assert len(again.workspace.list_runs(churn.id)) == runs
    assert all(p.id in after.tabs[0].panels for p in after.panels if p.title != "our notes")


def test_a_monitoring_run_says_what_it_found():
    from monitoring.drift import breaches
    from monitoring.weekly import _alert, run_description

    quiet = _drift("2026-W45", 0.077, 0.04, 0.79)
    said = run_description(quiet, None)
    assert "churn in GD, 2026-W45" in said and "telcoml-churn v3 (national champion)" in said
    assert "1 of 13" in said and "roc_auc 0.79 against 0.81" in said and "No alert." in said

    moved = _drift("2026-W46", 0.559, 0.21, None)
    moved.prediction_p_value = 1e-9
    moved.breaches = breaches(moved, Thresholds())
    said = run_description(moved, _alert(moved, moved.breaches))
    assert "ALERT: drifted_feature_share 0.559 ≥ 0.3; prediction_drift_score 0.21 ≥ 0.15" in said
    assert "Quality not judged: 0 labels matured." in said
    assert "telcoml train --task churn`" in said and "No alert." not in said
