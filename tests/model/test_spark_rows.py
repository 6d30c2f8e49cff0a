"""The Spark path's training rows (labels read by Spark, indicators by Feast's Spark offline
store) against the embedded path's (``make_dataset``: pandas, Feast's own offline store), and
the driver's bounded sample of them."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest

from core.settings import Settings
from core.tasks import task
from features.outcomes import OUTCOME_COLUMN
from features.provinces import load_province
from training import spark_rows
from training.data import (
    PARTS,
    Split,
    choose_split,
    encode,
    label_months,
    load_labels,
    make_dataset,
    snapshot_frame,
    snapshot_months,
    target,
)
from training.distributed import LABEL, VALIDATION, numeric
from training.fit_scorecard import fit_credit_scorecard

pytestmark = [pytest.mark.slow, pytest.mark.spark]

KEYS = ["msisdn", "event_timestamp"]


def spark_settings(workdir, **more) -> Settings:
    return Settings(
        workdir=workdir, engine="spark", spark_master="local[2]", spark_driver_memory="1g", **more
    )


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEYS, kind="stable").reset_index(drop=True)


def ordered_by_phone(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("msisdn", kind="stable").reset_index(drop=True)


def assert_same_rows(embedded, spread, t) -> None:
    """Every part: the same customers and months, the same matrix the models read (indicators
    encoded as the fits and serving encode them), labels and oracle, value for value."""
    for part in PARTS:
        a, b = ordered(embedded.frames[part]), ordered(spread.frames[part])
        assert len(a) == len(b) > 0, part
        pd.testing.assert_frame_equal(a[KEYS], b[KEYS])
        pd.testing.assert_frame_equal(numeric(encode(a, t)), numeric(encode(b, t)))
        np.testing.assert_array_equal(target(a, t), target(b, t))
        truth = [c for c in a.columns if c not in t.feature_names and c not in KEYS]
        assert set(truth) <= set(b.columns), set(truth) - set(b.columns)
        for column in truth:
            left, right = a[column], b[column]
            if left.dtype.kind in "ifu" or right.dtype.kind in "ifu":
                np.testing.assert_array_equal(left.to_numpy(float), right.to_numpy(float), err_msg=column)
            else:
                assert left.astype(str).tolist() == right.astype(str).tolist(), column


@pytest.mark.parametrize("name", ["churn", "channel_preference", "credit_grade", "tariff_sensitivity"])
def test_the_spark_training_rows_equal_the_embedded_paths(trained_world, spark, name):
    s = spark_settings(trained_world.settings.workdir)
    t = task(name)
    months = label_months(load_labels(s), t)
    assert spark_rows.label_months(s, t) == months
    split = choose_split(months, 3)  # train_task's split
    embedded = make_dataset(s, t, split)
    spread = spark_rows.spark_dataset(s, t, split)
    try:
        assert spread.rows == embedded.rows
        assert spread.lineage["driver_rows"] == embedded.rows  # this world is below both samples' bounds
        assert_same_rows(embedded, spread, t)

        # what the distributed fits read from Spark: the same rows, encoded the same way
        fit = spread.spark_rows.encoded(t, PARTS, ("valid",)).toPandas()
        expected = pd.concat(
            [
                numeric(embedded.X[k]).assign(**{LABEL: embedded.y[k], VALIDATION: k == "valid"})
                for k in PARTS
            ],
            ignore_index=True,
        )
        columns = list(expected.columns)
        pd.testing.assert_frame_equal(
            fit[columns].sort_values(columns).reset_index(drop=True),
            expected.sort_values(columns).reset_index(drop=True),
        )
    finally:
        spread.spark_rows.release()


def test_a_provinces_rows_by_customer_with_its_own_indicators_and_outcome(province_world, spark, tmp_path):
    """Guangdong's tailored credit grade (its custom indicator view), its credit outcome by its own
    definition (computed from its credit events), split by customer: the same rows both ways."""
    workdir = tmp_path / "work"
    shutil.copytree(province_world.settings.workdir, workdir)
    province_file = workdir / "provinces" / "GD.yaml"
    province_file.write_text(
        province_file.read_text() + "credit_outcome:\n  events: [arrears_written_off]\n", encoding="utf-8"
    )
    s = spark_settings(workdir)
    t = task("credit_grade").tailored(load_province(s, "GD"))
    assert any(i.id not in [j.id for j in task("credit_grade").indicators] for i in t.indicators)
    labels = load_labels(s, "GD")
    default = load_labels(Settings(workdir=province_world.settings.workdir), "GD")
    assert not labels["credit_bad_event"].equals(default["credit_bad_event"])  # its own outcome
    months = label_months(labels, t)
    split = Split(train=tuple(months), valid=months[-1], test=months[-1], method="customer")
    embedded = make_dataset(s, t, split, "GD")
    spread = spark_rows.spark_dataset(s, t, split, "GD")
    try:
        assert spread.rows == embedded.rows
        assert_same_rows(embedded, spread, t)
        # the scorecard's fitting month without the held-out customers, who judge it
        snapshot = spark_rows.snapshot_sample(s, t, months[-1], "GD", held_out=spread.spark_rows)
        whole = snapshot_frame(s, t, months[-1], "GD")
        judges = set(embedded.frames["test"]["msisdn"])
        assert snapshot.customers == len(whole) and judges & set(whole["msisdn"])
        assert_same_snapshot(whole[~whole["msisdn"].isin(judges)], snapshot.frame, t)
        outcome = labels.loc[labels["month"] == months[-1], ["msisdn", "credit_bad_event"]]
        got = snapshot.labels[["msisdn", "credit_bad_event"]]
        pd.testing.assert_frame_equal(ordered_by_phone(got), ordered_by_phone(outcome), check_dtype=False)
        # another task's labels: its own outcome not computed, and not the group's default either
        other = spark_rows.province_labels(spark, s, "GD", outcome=False)
        assert "credit_bad_event" not in other.columns and other.count() == len(labels)
        assert spark_rows.label_months(s, task("churn"), "GD") == label_months(labels, task("churn"))
    finally:
        spread.spark_rows.release()


def test_the_driver_holds_a_sample_of_whole_customers(trained_world, spark):
    s = spark_settings(
        trained_world.settings.workdir, spark_tuning_sample=1_000, spark_evaluation_sample=1_000
    )
    t = task("churn")
    split = choose_split(label_months(load_labels(s), t), 3)
    embedded = make_dataset(s, t, split)
    spread = spark_rows.spark_dataset(s, t, split)
    try:
        assert spread.rows == embedded.rows  # every row counted, and every row in Spark for the fits
        assert spread.spark_rows.encoded(t, PARTS).count() == sum(embedded.rows.values())
        wanted = {"train": 1_000, "valid": 250, "test": 1_000}
        for part in PARTS:
            held, whole = len(spread.y[part]), embedded.rows[part]
            assert spread.lineage["driver_rows"][part] == held
            assert whole > 2 * wanted[part]  # so the bound is what limits the sample
            assert 0.6 * wanted[part] < held < 1.4 * wanted[part], (part, held)
            # whole customers: a sampled customer's every row of the part is there
            full = embedded.frames[part]["msisdn"].value_counts()
            sampled = spread.frames[part]["msisdn"].value_counts()
            assert (full[sampled.index] == sampled).all()
        # the same sample again (a seeded hash, not a random draw)
        again = spark_rows.driver_sample(spread.spark_rows, spark_rows.sample_sizes(s), split.seed)
        assert sorted(again["msisdn"]) == sorted(pd.concat([spread.frames[k] for k in PARTS])["msisdn"])
    finally:
        spread.spark_rows.release()


def test_the_joined_rows_come_in_partitions_of_bounded_size(trained_world, spark, monkeypatch):
    """A persisted partition is read back whole: at 1M subscribers four partitions of 1.5M rows
    overflowed a 2 GiB heap. The join's partitions follow the label rows, not the session."""
    s = spark_settings(trained_world.settings.workdir)
    labelled = len(load_labels(s))
    assert spark_rows.partitions(spark, s, None) == 4  # this world: the session's own 4
    monkeypatch.setattr(spark_rows, "ROWS_PER_PARTITION", 1_000)
    assert spark_rows.partitions(spark, s, None) == -(-labelled // 1_000) > 4
    t = task("churn")
    split = choose_split(label_months(load_labels(s), t), 3)
    rows = spark_rows.spark_rows(s, t, split)
    try:
        assert sum(rows.rows.values()) == sum(make_dataset(s, t, split).rows.values())
        assert spark.conf.get("spark.sql.shuffle.partitions") == "4"  # the session's setting is back
    finally:
        rows.release()


def assert_same_snapshot(embedded: pd.DataFrame, spread: pd.DataFrame, t) -> None:
    """The same customers of the month, their province, and the indicators as the models read them."""
    a, b = ordered(embedded), ordered(spread)
    assert len(a) == len(b) > 0
    pd.testing.assert_frame_equal(a[KEYS], b[KEYS])
    assert a["province"].tolist() == b["province"].tolist() and (b["month"] == a["month"]).all()
    pd.testing.assert_frame_equal(numeric(encode(a, t)), numeric(encode(b, t)))


def test_the_scorecards_snapshot_from_spark_equals_the_embedded_one(trained_world, spark):
    """What the credit scorecard is fitted on (a month's every customer, labels or not): the
    whole snapshot below the bound, else a bounded sample of whole customers, the same ones in
    every month, with their credit outcome."""
    s = spark_settings(trained_world.settings.workdir)
    t = task("credit_grade")
    months = snapshot_months(s)
    month, previous = months[-4], months[-5]  # a month whose credit outcome has matured
    embedded = snapshot_frame(s, t, month)
    snapshot = spark_rows.snapshot_sample(s, t, month)
    assert snapshot.customers == len(embedded)
    assert_same_snapshot(embedded, snapshot.frame, t)
    labels = load_labels(s)
    expected = labels.loc[labels["month"] == month, ["msisdn", OUTCOME_COLUMN]]
    assert expected[OUTCOME_COLUMN].notna().any()
    got = snapshot.labels[["msisdn", OUTCOME_COLUMN]]
    pd.testing.assert_frame_equal(ordered_by_phone(got), ordered_by_phone(expected), check_dtype=False)

    bounded = spark_settings(trained_world.settings.workdir, spark_tuning_sample=1_000)
    assert len(embedded) > 2_000  # so the bound is what limits the sample
    sample = spark_rows.snapshot_sample(bounded, t, month)
    held = len(sample.frame)
    assert sample.customers == len(embedded) and 600 < held < 1_400, held
    kept = embedded[embedded["msisdn"].isin(sample.frame["msisdn"])]
    assert_same_snapshot(kept, sample.frame, t)  # a subset, value for value
    assert set(sample.labels["msisdn"]) <= set(sample.frame["msisdn"]) | set(labels["msisdn"])
    assert set(sample.labels["msisdn"]) & set(sample.frame["msisdn"]) == set(sample.labels["msisdn"])
    before = spark_rows.snapshot_sample(bounded, t, previous, share=sample.share)
    both = set(snapshot_frame(s, t, previous)["msisdn"]) & set(embedded["msisdn"])
    # the same customers in both months (those in both snapshots)
    assert set(before.frame["msisdn"]) & both == set(sample.frame["msisdn"]) & both


def test_the_credit_scorecard_fitted_on_the_spark_path_is_the_embedded_one(trained_world, spark, tmp_path):
    """``fit_credit_scorecard`` with ``TELCOML_ENGINE=spark`` (every row read by Spark, the
    driver holding what is below its bounds: here all of it): the same card, the same test."""
    workdir = tmp_path / "work"  # a copy: the other tests keep the trained world's champions
    shutil.copytree(trained_world.settings.workdir, workdir)
    embedded = fit_credit_scorecard(Settings(workdir=workdir))
    spread = fit_credit_scorecard(spark_settings(workdir))
    # the same indicators and weights
    assert [w["indicator"] for w in spread.importance] == [w["indicator"] for w in embedded.importance]
    assert len(spread.importance) > 2
    for mine, theirs in zip(spread.importance, embedded.importance, strict=True):
        assert mine["weight"] == pytest.approx(theirs["weight"], rel=1e-9)
    assert spread.metrics.keys() == embedded.metrics.keys()
    for key, value in embedded.metrics.items():
        assert spread.metrics[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
    a, b = (mlflow.get_run(r.run_id).data for r in (embedded, spread))
    for param in ("fit_month", "previous_month", "rows_fit", "snapshot_customers", "cutoffs", "outcome"):
        assert a.params[param] == b.params[param], param
    cutoffs = {k: v for k, v in a.metrics.items() if k.startswith("cutoff.")}
    assert len(cutoffs) == 4 and {k: b.metrics[k] for k in cutoffs} == pytest.approx(cutoffs, rel=1e-9)
    assert a.params["outcome"] == OUTCOME_COLUMN
    assert b.tags["test_score_basis"] == "held-out part, never used in fitting"
