"""Training with XGBoost's distributed estimator (xgboost.spark, local[2], two workers) against
the local fit: the same held-out quality within noise, and a champion that serves as any other."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.settings import Settings
from core.tasks import task
from serving.answers import score_frame
from serving.champions import load_champions
from serving.online import OnlineFeatures
from training import distributed
from training.data import choose_split, label_months, load_labels, make_dataset
from training.model import finalize
from training.registry import load_task_model
from training.train import train_task
from training.tune import XGBOOST_DEFAULTS, TuningBudget, base_params, fit, matrices

pytestmark = [pytest.mark.slow, pytest.mark.spark]

BUDGET = TuningBudget(trials=3, max_rounds=200, seed=3, threads=1)  # the trained world's
BOOTSTRAP = 1000


def spark_settings(workdir, **more) -> Settings:
    return Settings(
        workdir=workdir,
        engine="spark",
        spark_master="local[2]",
        spark_driver_memory="1g",
        spark_num_workers=2,
        **more,
    )


def test_a_distributed_fit_reaches_the_local_fits_held_out_quality(trained_world, spark):
    s = trained_world.settings
    t = task("churn")
    data = make_dataset(s, t, choose_split(label_months(load_labels(s), t), 3))  # train_task's split
    params = {**base_params(t, BUDGET.seed, BUDGET.threads), **XGBOOST_DEFAULTS, "eta": 0.1, "max_depth": 4}

    local_booster = fit(params, *matrices(data), BUDGET)
    local = finalize(t, local_booster, data, int(local_booster.best_iteration))
    parts = [(data.X["train"], data.y["train"], False), (data.X["valid"], data.y["valid"], True)]
    rows = distributed.pandas_rows(spark, parts, BUDGET.seed)
    spark_booster = distributed.fit_distributed(
        spark_settings(s.workdir), t, params, BUDGET.max_rounds, rows, BUDGET.early_stopping_rounds
    )
    spread = finalize(t, spark_booster, data, int(spark_booster.attr("best_iteration")))
    assert spread.feature_types == local.feature_types  # the categories stay categories

    # the test part: customers of a month neither model was fitted or stopped on
    test, y = data.frames["test"][t.feature_names], data.y["test"]
    p_local, p_spark = local.probabilities(test), spread.probabilities(test)
    assert not np.allclose(p_local, p_spark)  # two workers' histograms: a different fit, not a copy
    auc_local, auc_spark = roc_auc_score(y, p_local), roc_auc_score(y, p_spark)
    assert auc_local > 0.8 and auc_spark > 0.8

    # noise: the same test customers resampled; the AUC of each model and their paired difference
    rng = np.random.default_rng(0)
    local_aucs, diffs = [], []
    for _ in range(BOOTSTRAP):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() == y[rows].max():
            continue
        a, b = roc_auc_score(y[rows], p_local[rows]), roc_auc_score(y[rows], p_spark[rows])
        local_aucs.append(a)
        diffs.append(b - a)
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert low <= 0 <= high, f"AUC {auc_spark:.4f} vs {auc_local:.4f} (local): [{low:.4f}, {high:.4f}]"
    # and the difference is smaller than the local model's own sampling noise on these customers
    half_width = np.subtract(*np.percentile(local_aucs, [97.5, 2.5])) / 2
    assert abs(auc_spark - auc_local) < half_width, (auc_spark, auc_local, half_width)


def test_a_distributed_champion_registers_and_serves(trained_world, spark, tmp_path):
    workdir = tmp_path / "work"  # a copy: the other tests keep the trained world's champions
    shutil.copytree(trained_world.settings.workdir, workdir)
    # any challenger not below the baselines is promoted: the test is about the path, not the race
    s = spark_settings(workdir, gate_margin=-1.0)
    result = train_task(s, "churn", budget=BUDGET, train_months=3)
    before = trained_world.results["churn"]
    assert result.promoted and result.version != before.version
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["engine"] == "spark" and run.data.tags["num_workers"] == "2"
    assert int(run.data.params["rows_tuned"]) == int(run.data.params["rows_train"])  # small: all of it
    assert int(run.data.params["rows_tested"]) == int(run.data.params["rows_test"])
    assert run.data.tags["test_score_basis"] == "held-out part, measured before the refit"
    assert np.isfinite(result.metrics["test_roc_auc"]) and result.metrics["test_roc_auc"] > 0.8

    champions = load_champions(s)
    assert champions.versions["churn"] == result.version
    served = champions.for_province("GD")
    customers = trained_world.labels.query("province == 'GD'")["msisdn"].unique()[:30].tolist()
    online = OnlineFeatures(s).fetch(customers)  # the latest snapshot: a month no model was fitted on
    answers = score_frame(served, online)
    indicators = pd.DataFrame(online.records())
    registered = load_task_model(f"models:/{result.model_name}/{result.version}")
    expected = [round(float(p), 4) for p in registered.probabilities(indicators[registered.feature_names])]
    assert [a["churn"]["probability"] for a in answers] == expected
    earlier = load_task_model(f"models:/{before.model_name}/{before.version}")
    assert not np.allclose(earlier.probabilities(indicators[earlier.feature_names]), expected, atol=1e-4)


def test_partitions_longer_than_an_arrow_batch_train(spark, tmp_path):
    """xgboost.spark 3.2 fails on a batch of a partition without validating rows (KeyError
    'values'): two partitions of 10,003 rows would end in batches of 3 rows at Spark's default
    10,000 rows per batch (measured: it failed so)."""
    t = task("churn")
    rows = 20_006
    rng = np.random.default_rng(0)
    X = pd.DataFrame({c: rng.random(rows) for c in t.feature_names})
    for ind in t.indicators:
        if ind.kind == "category":
            X[ind.id] = pd.Categorical.from_codes(rng.integers(0, len(ind.codes), rows), list(ind.codes))
    y = (X["arpu_3m"] + rng.normal(0, 0.3, rows) > 0.7).astype(float).to_numpy()
    valid = rng.random(rows) < 0.2
    parts = [
        (X[~valid].reset_index(drop=True), y[~valid], False),
        (X[valid].reset_index(drop=True), y[valid], True),
    ]
    params = {**base_params(t, 1, 1), "eta": 0.3, "max_depth": 3}
    rows = distributed.pandas_rows(spark, parts, 1)
    booster = distributed.fit_distributed(spark_settings(tmp_path), t, params, 30, rows, 5)
    assert 1 <= int(booster.attr("best_iteration")) < booster.num_boosted_rounds() <= 30
    assert spark.conf.get(distributed.BATCH_ROWS) == "10000"  # the session's own setting is back
