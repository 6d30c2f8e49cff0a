"""Batch scoring as a Spark job (the production profile, ``TELCOML_ENGINE=spark``).

Spark reads a province-month's snapshot from the offline store's files (every subject,
joined on the phone number) and spreads it over the executors; each partition loads the
champions the settings' MLflow registry names once, and scores its batches with the same
``interface_rows`` as ``serving.batch.score_province``, so a customer's CRM row is the same
either way (``tests/serving/test_spark_batch.py``). The CRM file is written by Spark, as
Parquet and as CSV, partitioned by province and snapshot month:
``crm_interface/spark/{parquet,csv}/province=GD/snapshot_month=2026-04/part-*``; scoring a
province again replaces its partitions only.

Each scored batch is also recorded for weekly monitoring, as ``score_province`` records it:
the executor writes its own uniquely named file under the week and province (so the work
directory must be storage every executor sees). A task Spark retries after it wrote its
records records its customers twice. Spark writes a double in CSV as Java prints it (``1.0E-4``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from core import indicators as lib
from core.errors import NotReadyError
from core.settings import Settings
from features.build import offline_file
from features.provinces import custom_subject
from serving.batch import BatchResult, interface_rows, interface_schema, latest_month_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: The CRM file's partition columns (folders), in this order.
PARTITIONS = ["province", "snapshot_month"]


def spark_output_dir(settings: Settings) -> Path:
    return settings.workdir / "crm_interface" / "spark"


def snapshot_frame(spark: SparkSession, settings: Settings, province: str, month: str) -> DataFrame:
    """The province-month's indicators, every subject joined on the phone number (as
    ``serving.batch.snapshot_chunks`` joins them, ``features_as_of`` included)."""
    from pyspark.sql import functions as F

    custom = offline_file(settings.offline_dir, custom_subject(province), province, month)
    subjects = [*lib.SUBJECTS, *([custom_subject(province)] if custom.exists() else [])]
    paths = {s: offline_file(settings.offline_dir, s, province, month) for s in subjects}
    if not all(p.exists() for p in paths.values()):
        raise NotReadyError(f"no indicator snapshot for {province} {month} in {settings.offline_dir}")
    frames = [spark.read.parquet(str(p)) for p in paths.values()]
    joined = frames[0].withColumnRenamed("event_timestamp", "features_as_of").drop("created_timestamp")
    for frame in frames[1:]:
        joined = joined.join(frame.drop("event_timestamp", "created_timestamp"), "msisdn")
    return joined.withColumn("msisdn", F.col("msisdn").cast("string"))


def score_partitions(settings: Settings, province: str, month: str, scored_at: str, record: bool = True):
    """The function each partition runs: champions loaded once, then ``interface_rows`` per batch
    (and its monitoring record, with ``record``)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from monitoring.record import predictions_from_interface, score_rows, write_partitioned
        from serving.champions import partition_champions

        models = None
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if models is None:  # once per partition
                models = partition_champions(settings, province)
            indicators = batch.to_pandas()
            table = interface_rows(models, indicators, month, scored_at)
            if record:
                predictions = predictions_from_interface(table)
                write_partitioned(
                    settings, score_rows(settings, indicators, predictions, models.names, "batch"), "batch"
                )
            yield from table.to_batches()

    return run


def score_province_spark(
    spark: SparkSession,
    settings: Settings,
    province: str,
    month: str | None = None,
    output_dir: Path | None = None,
    record: bool = True,
) -> BatchResult:
    """``serving.batch.score_province`` as a Spark job; ``parquet`` and ``csv`` of the result are
    the partitioned folders (the province-month's partition is in ``province=XX/snapshot_month=M``)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    started = time.perf_counter()
    province = province.upper()
    month = month or latest_month_for(settings, province)
    out = Path(output_dir or spark_output_dir(settings))
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    indicators = snapshot_frame(spark, settings, province, month)
    indicators = indicators.repartition(spark.sparkContext.defaultParallelism)
    scored = indicators.mapInArrow(
        score_partitions(settings, province, month, scored_at, record), from_arrow_schema(interface_schema())
    ).persist()  # scored once, written twice
    try:
        rows = scored.count()
        if rows == 0:
            raise NotReadyError(f"no customers in the {province} {month} snapshot")
        writer = scored.write.mode("overwrite").partitionBy(*PARTITIONS)
        writer.parquet(str(out / "parquet"))
        writer.option("header", True).csv(str(out / "csv"))
    finally:
        scored.unpersist()
    return BatchResult(province, month, rows, time.perf_counter() - started, out / "parquet", out / "csv")


def partition_dir(root: Path, province: str, month: str) -> Path:
    """The folder of one province-month in the partitioned CRM file."""
    return Path(root) / f"province={province}" / f"snapshot_month={month}"
