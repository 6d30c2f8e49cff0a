"""Each province's monitoring: its own champion, its custom indicators, its thresholds."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_a_province_is_monitored_against_its_own_champion(province_world):
    from features.provinces import load_province
    from monitoring.weekly import monitor_week, thresholds_for
    from serving.batch import replay_month

    s = province_world.settings
    week = replay_month(s, province_world.months[-2])
    result = monitor_week(s, week, tasks=["credit_grade", "churn"], log_to_mlflow=False)
    by = {(d.province, d.task): d for d in result.drift}
    # credit grade: each province's own model; churn: the national one
    assert by[("GD", "credit_grade")].model == "telcoml-credit_grade-gd"
    assert by[("HE", "credit_grade")].model == "telcoml-credit_grade-he"
    assert by[("GD", "churn")].model == "telcoml-churn"
    # the province's own indicator set is what is tested, custom indicators included
    gd = load_province(s, "GD")
    tested = set(by[("GD", "credit_grade")].feature_scores)
    assert {c.id for c in gd.custom_indicators} <= tested
    assert set(gd.dropped).isdisjoint(tested)
    assert tested != set(by[("HE", "credit_grade")].feature_scores)
    # thresholds from the province file
    summary = json.loads((result.report_dir / "GD" / "credit_grade.json").read_text())
    assert summary["thresholds"] == {**summary["thresholds"], **gd.drift_thresholds}
    assert thresholds_for(s, "GD").prediction_drift_score == gd.drift_thresholds["prediction_drift_score"]
