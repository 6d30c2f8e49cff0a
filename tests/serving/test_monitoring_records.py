"""Serving and batch scoring record what they scored for the weekly monitoring job."""

from __future__ import annotations

import time
from datetime import UTC

import httpx

from core.tasks import TASKS
from monitoring.record import INDICATOR_IDS, iso_week, read_week


def _wait_for(settings, week, msisdn_masked, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = read_week(settings, week)
        if not frame.empty:
            frame = frame[(frame["msisdn_masked"] == msisdn_masked) & frame["source"].str.startswith("api-")]
            if not frame.empty:
                return frame
        time.sleep(0.5)
    raise AssertionError(f"no record of {msisdn_masked} in week {week} after {timeout}s")


def test_served_customers_are_recorded_masked(server, keys, customers, trained_world):
    from datetime import datetime

    msisdn = customers["GD"]
    answer = httpx.post(
        f"{server.url}/score", json={"msisdn": msisdn}, headers={"X-API-Key": keys["GD"]}
    ).json()
    week = iso_week(datetime.now(UTC))
    masked = f"{msisdn[:3]}****{msisdn[-4:]}"
    frame = _wait_for(trained_world.settings, week, masked)  # this customer's rows recorded by the API
    row = frame.sort_values("scored_at").iloc[-1]
    assert row["province"] == "GD"
    assert row["pred_credit_grade"] == answer["credit_grade"]["code"]
    assert row["pred_channel_preference"] == answer["channel_preference"]["best_channel"]
    assert row["model_churn"] == answer["models"]["churn"]  # the registry URI that answered
    assert {t.prediction_column for t in TASKS.values()} <= set(
        frame.columns
    )  # every model's prediction, every row
    assert {"tenure_months", "billing_inquiry_count_3m"} <= set(frame.columns) & set(INDICATOR_IDS)
    # the whole number is nowhere in the recorded files
    for path in (trained_world.settings.workdir / "monitoring" / "scores").rglob("*.parquet"):
        assert msisdn.encode() not in path.read_bytes()


def test_batch_scoring_records_a_replayed_week(trained_world):
    from monitoring.record import live_week
    from serving.batch import replay_month

    month = trained_world.months[-2]
    week = replay_month(trained_world.settings, month, ["HE"])
    assert week == live_week(month)
    frame = read_week(trained_world.settings, week, "HE")
    labels = trained_world.labels
    assert len(frame) == int(((labels["month"] == month) & (labels["province"] == "HE")).sum())
    assert frame["source"].eq("batch").all() and frame["customer_key"].is_unique
    # a replay's CRM files stay out of the real interface folder
    assert (trained_world.settings.workdir / "monitoring" / "replay" / f"crm_HE_{month}.parquet").exists()
