"""What the distributed fit is given: indicators as float columns, a bounded tuning sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigurationError
from core.tasks import task
from training.data import Dataset, Split
from training.distributed import estimator, numeric, tuning_sample
from training.tune import base_params


def test_categories_become_their_codes_and_missing_stays_missing():
    X = pd.DataFrame(
        {
            "brand": pd.Categorical.from_codes([2, -1, 0], categories=["a", "b", "c"]),
            "arpu_3m": [1.5, np.nan, 3],
        }
    )
    out = numeric(X)
    assert out.dtypes.tolist() == [np.float64, np.float64]
    np.testing.assert_array_equal(out["brand"], [2.0, np.nan, 0.0])
    np.testing.assert_array_equal(out["arpu_3m"], [1.5, np.nan, 3.0])


def _dataset(customers: int, months: int) -> Dataset:
    t = task("churn")
    rng = np.random.default_rng(1)
    parts = {}
    for k, month in (("train", "2026-01"), ("valid", "2026-02"), ("test", "2026-03")):
        ids = [f"1380000{i:04d}" for i in range(customers)]
        frame = pd.DataFrame(
            {
                "msisdn": np.repeat(ids, months),
                "month": month,
                t.label: rng.random(customers * months) < 0.2,
                "row": np.arange(customers * months),
            }
        )
        parts[k] = frame
    return Dataset(
        task=t,
        split=Split(train=("2026-01",), valid="2026-02", test="2026-03"),
        X={k: pd.DataFrame({"arpu_3m": np.arange(len(v), dtype=float)}) for k, v in parts.items()},
        y={k: v[t.label].to_numpy(dtype=float) for k, v in parts.items()},
        frames=parts,
        lineage={},
    )


def test_the_tuning_sample_takes_whole_customers_and_leaves_the_test_part():
    data = _dataset(customers=1000, months=2)  # 2,000 rows per part, each customer twice
    sample = tuning_sample(data, rows=500, seed=3)
    for k, bound in (("train", 500), ("valid", 125)):
        kept = sample.frames[k]
        assert abs(len(kept) - bound) <= 4, (k, len(kept))
        assert (kept.groupby("msisdn").size() == 2).all()  # both rows of every customer kept
        assert len(sample.X[k]) == len(sample.y[k]) == len(kept)
        # the rows' indicators and labels follow them (the made-up indicator is the row's number)
        np.testing.assert_array_equal(sample.X[k]["arpu_3m"], kept["row"])
        np.testing.assert_array_equal(sample.y[k], data.y[k][kept["row"]])
    assert sample.frames["test"] is data.frames["test"] and len(sample.y["test"]) == 2000


def test_a_small_table_is_tuned_whole():
    data = _dataset(customers=100, months=1)
    assert tuning_sample(data, rows=1000, seed=3) is data


def test_an_objective_without_a_spark_estimator_is_refused():
    t = task("churn")
    params = {**base_params(t, 1, 1), "objective": "rank:pairwise"}
    with pytest.raises(ConfigurationError, match="rank:pairwise"):
        estimator(t, params, rounds=10, num_workers=2, early_stopping_rounds=None)
