"""The indicator build as Spark jobs (the production profile, ``TELCOML_ENGINE=spark``).

The same pure functions as ``features.build``, distributed partition by partition, so the
offline files are the pandas build's value for value (``tests/data/test_spark_build.py``):

1. Spark reads every raw partition file through its own file system (local, HDFS, S3) and
   groups them by province and month; each group opens its tables as ``read_partition``
   does (``pandas.read_parquet`` of the same bytes) and runs ``aggregate_month``.
2. Each snapshot (province, month) gathers the monthly aggregates of its window, in the
   order the pandas build keeps them, with the province's master tables, and runs
   ``indicators_at`` and ``offline_views``.
3. The driver streams each snapshot's files back and writes them atomically into the
   offline store's layout (``offline_file``): Feast reads the same files whatever built them.

Provinces' custom indicators (``features.custom``) are still built with pandas afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import NotReadyError
from core.io import atomic_write_bytes, remove_stale_temporaries
from core.logs import get_logger
from features.build import (
    WINDOW_MONTHS,
    aggregate_month,
    history_before,
    indicators_at,
    offline_file,
    offline_views,
)
from features.schemas import TABLES, partition_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)

MONTHLY_TABLES = [name for name, t in TABLES.items() if t.monthly]
#: The master tables a snapshot reads besides its window's aggregates.
MASTER_TABLES = ("subscribers", "red_black_list")
AGGREGATE_SCHEMA = "province string, month string, aggregate binary"
FILES_SCHEMA = "province string, month string, subject string, rows long, content binary"


def snapshot_windows(
    raw_dir: Path, provinces: Sequence[str], months: Sequence[str]
) -> dict[tuple[str, str], list[str]]:
    """(province, snapshot month) -> the months its windows read, oldest first: exactly the
    history ``build_indicators`` holds when it reaches that month."""
    windows = {}
    for province in provinces:
        history = history_before(raw_dir, province, months[0]) if months else []
        for month in months:
            history = [*history, month][-WINDOW_MONTHS:]
            windows[(province, month)] = history
    return windows


def _read(content: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(content))


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as the Parquet file ``core.io.atomic_write_parquet`` writes for it."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue().to_pybytes()


def _aggregate_bytes(aggregate: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **aggregate)
    return buffer.getvalue()


def _aggregate_from(content: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def month_aggregate(raw_dir: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Stage 1's function: one province-month's raw files (and the subscriber master) -> its
    ``aggregate_month``, as one row."""

    def run(files: pd.DataFrame) -> pd.DataFrame:
        province, month = files["province"].iloc[0], files["month"].iloc[0]
        tables = {t: _read(c) for t, c in zip(files["table"], files["content"])}
        for table in ["subscribers", *MONTHLY_TABLES]:
            if table not in tables:  # read_partition's refusal, naming the same path
                path = partition_path(raw_dir, table, province, month)
                raise NotReadyError(
                    f"raw partition missing: {path} (run `telcoml generate` or `telcoml ingest`)"
                )
        index = pd.Index(tables.pop("subscribers")["msisdn"].astype(str))
        aggregate = aggregate_month(index, tables)
        content = _aggregate_bytes(aggregate)
        return pd.DataFrame({"province": [province], "month": [month], "aggregate": [content]})

    return run


def snapshot_files(parts: pd.DataFrame) -> pd.DataFrame:
    """Stage 2's function: a snapshot's window of aggregates and its master tables -> the
    offline files of every feature view (Parquet bytes, one row each)."""
    province, month = parts["province"].iloc[0], parts["snapshot"].iloc[0]
    masters = {t: _read(c) for t, c in zip(parts["table"], parts["content"]) if t in MASTER_TABLES}
    window = parts[parts["table"] == "aggregate"].sort_values("position")
    history = [_aggregate_from(c) for c in window["content"]]
    frame = indicators_at(masters["subscribers"], masters["red_black_list"], history, month)
    views = offline_views(frame, pd.Timestamp.now(tz="UTC"))
    return pd.DataFrame(
        {
            "province": province,
            "month": month,
            "subject": list(views),
            "rows": [len(v) for v in views.values()],
            "content": [parquet_bytes(v) for v in views.values()],
        }
    )


def _binary_files(spark: SparkSession, raw_dir: Path, table: str) -> DataFrame:
    """Every Parquet file of a raw table, with its province (and month) from the folder names."""
    from pyspark.sql import functions as F

    files = spark.read.format("binaryFile").option("pathGlobFilter", "*.parquet").load(str(raw_dir / table))
    return files.withColumn("table", F.lit(table))


def build_indicators_spark(
    spark: SparkSession,
    raw_dir: Path,
    offline_dir: Path,
    provinces: Sequence[str],
    months: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> int:
    """``features.build.build_indicators`` as Spark jobs: the same files, the same rows written."""
    from pyspark.sql import functions as F

    raw_dir, offline_dir = Path(raw_dir).resolve(), Path(offline_dir)
    for stale in remove_stale_temporaries([raw_dir, offline_dir]):
        log.info("removed %s, left by an interrupted run", stale)
    windows = snapshot_windows(raw_dir, provinces, months)
    if not windows:
        return 0
    window_rows = [(p, m, i, src) for (p, m), sources in windows.items() for i, src in enumerate(sources)]
    plan = spark.createDataFrame(window_rows, "province string, snapshot string, position int, month string")
    needed = plan.select("province", "month").distinct()

    # stage 1: each needed province-month's raw files, with the province's subscriber master
    monthly = None
    for table in MONTHLY_TABLES:
        files = _binary_files(spark, raw_dir, table).select("province", "month", "table", "content")
        monthly = files if monthly is None else monthly.unionByName(files)
    monthly = monthly.join(needed, ["province", "month"])
    subscribers = _binary_files(spark, raw_dir, "subscribers").select("province", "table", "content")
    grouped = monthly.unionByName(needed.join(subscribers, "province"))
    aggregates = grouped.groupBy("province", "month").applyInPandas(
        month_aggregate(str(raw_dir)), AGGREGATE_SCHEMA
    )

    # stage 2: each snapshot's window of aggregates (in order) and its master tables
    window = plan.join(aggregates, ["province", "month"]).select(
        "province",
        "snapshot",
        "position",
        F.lit("aggregate").alias("table"),
        F.col("aggregate").alias("content"),
    )
    snapshots = plan.select("province", "snapshot").distinct()
    masters = None
    for table in MASTER_TABLES:
        files = _binary_files(spark, raw_dir, table).select("province", "table", "content")
        masters = files if masters is None else masters.unionByName(files)
    masters = snapshots.join(masters, "province").select(
        "province", "snapshot", F.lit(-1).alias("position"), "table", "content"
    )
    parts = window.unionByName(masters)
    files = parts.groupBy("province", "snapshot").applyInPandas(snapshot_files, FILES_SCHEMA)

    rows, written = 0, set()
    for row in files.toLocalIterator():
        path = offline_file(offline_dir, row["subject"], row["province"], row["month"])
        atomic_write_bytes(row["content"], path)
        if row["subject"] == "profile":  # every subject has the snapshot's customers; count them once
            rows += row["rows"]
        snapshot = (row["province"], row["month"])
        if snapshot not in written and progress:
            progress(1)
        written.add(snapshot)
    missing = set(windows) - written
    if missing:
        raise NotReadyError(f"the Spark build wrote no snapshot for {sorted(missing)}: see the Spark log")
    return rows
