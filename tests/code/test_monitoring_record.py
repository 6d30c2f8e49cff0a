"""The monitoring record: weeks, masking, salted keys, buffered atomic writes."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigurationError
from core.settings import Settings
from monitoring.record import (
    ScoreLog,
    customer_keys,
    iso_week,
    live_week,
    read_week,
    recorded_weeks,
    week_bounds,
)
from monitoring.weekly import weeks_between


def test_weeks():
    assert iso_week(date(2026, 11, 23)) == "2026-W48"
    assert week_bounds("2026-W48") == (date(2026, 11, 23), date(2026, 11, 29))
    assert live_week("2026-10") == "2026-W45"  # the Monday after 31 October
    assert weeks_between("2026-W52", "2027-W02") == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]
    with pytest.raises(ConfigurationError, match="2026-W44"):
        week_bounds("2026-44")


def _frames(n=3, province="GD"):
    indicators = pd.DataFrame(
        {
            "msisdn": [f"1380000{i:04d}" for i in range(n)],
            "province": province,
            "tenure_months": np.arange(n),
            "brand": "gotone",
            "features_as_of": "2026-10-31T23:59:59+00:00",
        }
    )
    predictions = pd.DataFrame(
        {
            "pred_credit_grade": [3] * n,
            "pred_tariff_sensitivity": [50.0] * n,
            "pred_complaint_sensitivity": [20.0] * n,
            "pred_churn": [0.1] * n,
            "pred_channel_preference": ["hotline_10086"] * n,
        }
    )
    return indicators, predictions


def test_score_log_buffers_then_writes_masked_rows(tmp_path):
    settings = Settings(workdir=tmp_path)
    log = ScoreLog(settings, "test", flush_rows=5, flush_seconds=0)
    log.record(
        *_frames(3), {"churn": "models:/telcoml-churn/2"}, scored_at=datetime(2026, 11, 24, tzinfo=UTC)
    )
    assert read_week(settings, "2026-W48").empty  # still buffered
    log.record(
        *_frames(3), {"churn": "models:/telcoml-churn/2"}, scored_at=datetime(2026, 11, 24, tzinfo=UTC)
    )
    frame = read_week(settings, "2026-W48")
    assert len(frame) == 6 and recorded_weeks(settings) == ["2026-W48"]
    assert frame["msisdn_masked"].iloc[0] == "138****0000"
    assert "msisdn" not in frame and frame["model_churn"].eq("models:/telcoml-churn/2").all()
    assert frame["customer_key"].nunique() == 3  # same customer, same key
    assert not list((settings.workdir / "monitoring").rglob("*.tmp"))
    salt = settings.workdir / "monitoring" / ".customer_key_salt"
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    # a different work directory has a different salt: keys don't link across deployments
    assert (
        customer_keys(Settings(workdir=tmp_path / "other"), ["13800000000"])[0]
        != frame["customer_key"].iloc[0]
    )


def test_a_replayed_week_is_stamped_with_its_monday(tmp_path):
    settings = Settings(workdir=tmp_path)
    log = ScoreLog(settings, "batch", flush_seconds=0)
    log.record(*_frames(2, "HE"), {}, week="2026-W45")
    log.close()
    frame = read_week(settings, "2026-W45", "HE")
    assert (pd.to_datetime(frame["scored_at"], utc=True).dt.date == date(2026, 11, 2)).all()
