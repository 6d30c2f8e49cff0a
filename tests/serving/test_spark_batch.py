"""Batch scoring as a Spark job (local mode) against score_province and the live answers."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.errors import TelcomlError
from core.settings import Settings
from monitoring.record import scores_dir
from serving.answers import score_frame
from serving.batch import interface_schema, score_province, scoring_lock, snapshot_files
from serving.champions import load_champions
from serving.online import OnlineFeatures
from serving.spark_batch import partition_dir, score_province_spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _partition(root, province, month) -> pd.DataFrame:
    """One province-month of the partitioned CRM file, with its folder columns, as score_province
    writes it (same columns, same order, same types)."""
    folder = partition_dir(root, province, month)
    table = pq.read_table(sorted(folder.glob("*.parquet")))
    frame = table.to_pandas().assign(province=province, snapshot_month=month)
    return frame[interface_schema().names]


def test_spark_batch_scores_equal_score_province_and_the_live_answers(trained_world, spark, tmp_path):
    s = trained_world.settings
    month = trained_world.months[-1]
    champions = load_champions(s)
    expected = pd.read_parquet(score_province(s, champions, "GD", record=False, output_dir=tmp_path).parquet)
    result = score_province_spark(spark, s, "gd", output_dir=tmp_path / "spark", record=False)
    assert (result.province, result.month, result.rows) == ("GD", month, len(expected))

    built = _partition(result.parquet, "GD", month)
    assert built["scored_at"].nunique() == 1
    by_msisdn = ["msisdn"]
    built = built.drop(columns="scored_at").sort_values(by_msisdn).reset_index(drop=True)
    expected = expected.drop(columns="scored_at").sort_values(by_msisdn).reset_index(drop=True)
    pd.testing.assert_frame_equal(built, expected, check_exact=True)  # dtypes too, NaN where NaN

    # a CRM reading either CSV reads the same values
    def csv_values(files) -> pd.DataFrame:
        frame = pd.concat([pd.read_csv(f, dtype={"msisdn": str}) for f in sorted(files)], ignore_index=True)
        frame = frame.drop(columns=["scored_at", "province", "snapshot_month"], errors="ignore")
        return frame.sort_values("msisdn").reset_index(drop=True)

    embedded_csv = csv_values([tmp_path / f"crm_GD_{month}.csv"])
    spark_csv = csv_values(partition_dir(result.csv, "GD", month).glob("*.csv"))
    assert list(spark_csv.columns) == list(embedded_csv.columns)
    pd.testing.assert_frame_equal(spark_csv, embedded_csv, check_exact=True)

    # the live path (online store, score_frame) answers a sample of them the same
    sample = expected.sample(20, random_state=1)
    online = OnlineFeatures(s).fetch(sample["msisdn"].tolist())
    answers = score_frame(champions.for_province("GD"), online)
    assert [a["credit_grade"]["code"] for a in answers] == sample["credit_grade"].tolist()
    assert [a["channel_preference"]["best_channel"] for a in answers] == sample["best_channel"].tolist()
    assert [a["churn"]["probability"] for a in answers] == sample["churn_probability"].round(4).tolist()


def test_scoring_a_province_again_replaces_its_partition_only(trained_world, spark, tmp_path):
    s = trained_world.settings
    month = trained_world.months[-1]
    out = tmp_path / "spark"
    first = score_province_spark(spark, s, "HE", output_dir=out, record=False)
    score_province_spark(spark, s, "GD", output_dir=out, record=False)
    again = score_province_spark(spark, s, "GD", output_dir=out, record=False)
    assert len(_partition(out / "parquet", "HE", month)) == first.rows
    assert len(_partition(out / "parquet", "GD", month)) == again.rows
    # no staging or set-aside left (the provinces' lock files stay: a lock is never removed)
    assert sorted(p.name for p in out.iterdir()) == [".GD.scoring.lock", ".HE.scoring.lock", "csv", "parquet"]


def test_row_groups_spread_over_parts_and_misaligned_files_are_refused(trained_world, spark, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(trained_world.settings.workdir, workdir)
    s = Settings(workdir=workdir)
    month = trained_world.months[-1]
    files = snapshot_files(s, "GD", month)
    expected = pd.read_parquet(
        score_province(s, load_champions(s), "GD", record=False, output_dir=tmp_path).parquet
    )

    # every subject in row groups of 40 customers, as the Spark build writes buckets: several parts
    for path in files.values():
        pq.write_table(pq.read_table(path), path, row_group_size=40)
    out = tmp_path / "spark"
    score_province_spark(spark, s, "GD", output_dir=out, record=False)
    parts = sorted(partition_dir(out / "parquet", "GD", month).glob("*.parquet"))
    assert len(parts) == min(spark.sparkContext.defaultParallelism * 2, -(-len(expected) // 40)) > 1
    before = _partition(out / "parquet", "GD", month)
    key = ["msisdn"]
    pd.testing.assert_frame_equal(
        before.drop(columns="scored_at").sort_values(key).reset_index(drop=True),
        expected.drop(columns="scored_at").sort_values(key).reset_index(drop=True),
        check_exact=True,
    )

    # one subject's file rewritten in row groups of another size: its rows no longer line up
    pq.write_table(pq.read_table(files["usage"]), files["usage"], row_group_size=7)
    with pytest.raises(TelcomlError, match=r"GD .* not row-aligned \(usage"):
        score_province_spark(spark, s, "GD", output_dir=out, record=False)
    pd.testing.assert_frame_equal(_partition(out / "parquet", "GD", month), before)  # kept as it was

    # a second run of GD while one holds its lock (here: this process, through another open file)
    with scoring_lock(out, "GD"):
        with pytest.raises(TelcomlError, match="another batch scoring of GD is writing its CRM file"):
            score_province_spark(spark, s, "GD", output_dir=out, record=False)
    pd.testing.assert_frame_equal(_partition(out / "parquet", "GD", month), before)


def test_spark_batch_records_the_same_monitoring_rows(trained_world, spark, tmp_path):
    # a copy of the trained world: these records must not reach the other tests' weeks
    workdir = tmp_path / "work"
    shutil.copytree(trained_world.settings.workdir, workdir)
    s = Settings(workdir=workdir)

    def record_files() -> set:
        return set(scores_dir(s).rglob("batch-*.parquet"))

    def read(files: set) -> pd.DataFrame:
        frame = pd.concat([pd.read_parquet(f) for f in sorted(files)], ignore_index=True)
        return frame.drop(columns="scored_at").sort_values("customer_key").reset_index(drop=True)

    before = record_files()
    score_province(s, load_champions(s), "GD", output_dir=tmp_path / "crm")
    embedded = record_files() - before
    result = score_province_spark(spark, s, "GD", output_dir=tmp_path / "spark")
    spark_files = record_files() - before - embedded
    expected, built = read(embedded), read(spark_files)
    assert len(built) == len(expected) == result.rows > 0
    pd.testing.assert_frame_equal(built, expected, check_exact=True)


def test_every_province_scored_in_one_spark_session(trained_world, spark, tmp_path):
    from telcoml.pipeline import batch_score_stage

    workdir = tmp_path / "work"  # a copy: the run records its customers for monitoring
    shutil.copytree(trained_world.settings.workdir, workdir)
    s = Settings(workdir=workdir, engine="spark")
    month = trained_world.months[-1]
    labels = trained_world.labels.query("month == @month")
    results = batch_score_stage(s)
    assert [(r.province, r.month) for r in results] == [
        (p, month) for p in sorted(labels["province"].unique())
    ]
    for r in results:
        assert (
            len(_partition(r.parquet, r.province, month))
            == r.rows
            == (labels["province"] == r.province).sum()
        )
