"""Model health as pure functions, on hand-made inputs."""

from __future__ import annotations

import pandas as pd

from serving.console.health import champion_rows, choose_week, registry_name, scoped_alerts, weekly_rows


def test_champion_rows_name_the_champion_and_its_held_out_score():
    champions = {
        "HE": {
            "uris": {"churn": "models:/telcoml-churn/3", "credit_grade": "models:/telcoml-credit_grade-he/2"},
            "methods": {"churn": "xgboost", "credit_grade": "scorecard"},
            "versions": {"churn": "3", "credit_grade": "2"},
            "loaded_at": "2026-11-30T01:00:00+00:00",
        }
    }
    scores = {("telcoml-credit_grade-he", "2"): "0.712345", ("telcoml-churn", "3"): None}
    rows = champion_rows(champions, scores, "en")
    assert [r["task"] for r in rows] == ["credit_grade", "churn"]  # the tasks' declared order
    assert rows[0]["own"] and not rows[1]["own"]
    assert rows[0]["held_out"] == "0.7123" and rows[1]["held_out"] == "—"
    assert rows[0]["method"] == "scorecard" and rows[0]["metric"] == "grade_auc"
    assert registry_name("models:/telcoml-credit_grade-he/2") == "telcoml-credit_grade-he"
    assert rows[0]["link"] is None  # no MLflow UI named: no link
    linked = champion_rows(champions, scores, "en", "http://mlflow.example:5000/")
    assert linked[0]["link"] == "http://mlflow.example:5000/#/models/telcoml-credit_grade-he/versions/2"


def test_weekly_rows_keep_the_keys_province_and_put_alerts_first():
    summary = pd.DataFrame(
        {
            "province": ["GD", "GD", "HE"],
            "task": ["credit_grade", "churn", "churn"],
            "champion": ["national v1"] * 3,
            "customers": [10, 10, 7],
            "drifted": ["0/20", "5/20", "1/20"],
            "prediction_drift": [0.01, 0.2, None],
            "quality": ["—"] * 3,
            "outcome": ["—"] * 3,
            "business_rates": ["—"] * 3,
            "data_quality": ["pass"] * 3,
            "top_moved": ["—"] * 3,
            "status": ["ok", "ALERT", "ok"],
        }
    )
    everyone = weekly_rows(summary, "*", "zh")
    assert [(r["province"], r["task"], r["alert"]) for r in everyone] == [
        ("GD", "churn", True),
        ("GD", "credit_grade", False),
        ("HE", "churn", False),
    ]
    assert everyone[2]["cells"][3] == "—"  # a missing figure is a dash, not "nan"
    he = weekly_rows(summary, "HE", "zh")
    assert [r["province"] for r in he] == ["HE"]
    alerts = [{"province": "GD", "task": "churn", "breaches": [], "action": "retrain"}]
    assert scoped_alerts(alerts, "HE", "en") == []
    assert scoped_alerts(alerts, "GD", "en")[0]["action"] == "retrain"


def test_choose_week_only_among_the_reports():
    weeks = ["2026-W45", "2026-W44"]
    assert choose_week(None, weeks) == ("2026-W45", True)
    assert choose_week({"week": "2026-W44"}, weeks) == ("2026-W44", True)
    assert choose_week({"week": "../../etc"}, weeks) == ("2026-W45", False)
    assert choose_week({"week": "2026-W45"}, []) == (None, False)
