"""Materialization by Spark tasks (``TELCOML_MATERIALIZE=spark``, the production profile).

The streaming materialization's record batches (``features.stream_materialize``), written by
Spark tasks split by offline row group (a bucket of customers after the Spark build) instead
of one process, so a cluster loads the online store from every executor at once. The driver
does Feast's registry steps around the tasks, as the streaming one does around its loop.
PySpark is only imported by the caller's session: the serving image never loads this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from feast import FeatureStore, FeatureView

from core.errors import ConfigurationError
from features.stream_materialize import (
    BATCH_ROWS,
    StreamedView,
    interval_row_groups,
    materialize_views,
    row_group_batches,
    view_columns,
    view_files,
    write_batches,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def materialize_spark(
    spark: SparkSession,
    store: FeatureStore,
    start: datetime,
    end: datetime,
    views: Sequence[str],
    rows: int = BATCH_ROWS,
) -> list[StreamedView]:
    """``materialize_stream`` with the writing spread over Spark tasks, by offline row group:
    each executor reads its row groups a record batch at a time and writes them with Feast's
    provider (``online_write_batch``), so the online store is loaded by every core of the
    cluster at once; the driver does the registry steps and records a view only once all its
    tasks succeeded. The executors write the online store themselves: it must be one they all
    reach (Redis), and the offline files must be where they read them (shared storage)."""
    if store.config.online_store.type == "sqlite":
        raise ConfigurationError(
            "TELCOML_MATERIALIZE=spark writes the online store from every executor: it needs "
            "TELCOML_ONLINE_STORE=redis (SQLite is one file on one machine; use `stream`)"
        )
    return materialize_views(store, start, end, views, partial(_spark_rows, spark, store, rows))


def _spark_rows(
    spark: SparkSession, store: FeatureStore, rows: int, view: FeatureView, start: datetime, end: datetime
) -> tuple[int, int]:
    """One view's interval into the online store from Spark tasks, its row groups spread over
    up to four tasks per core (each writes its row groups one by one)."""
    timestamp = view.batch_source.timestamp_field
    work = [
        (path, g)
        for path in view_files(store, view)
        for g in interval_row_groups(path, timestamp, start, end)
    ]
    if not work:
        return 0, 0
    task = partial(_write_row_groups, store.config, view.to_proto().SerializeToString(), start, end, rows)
    slots = spark.sparkContext.defaultParallelism * 4
    counts = spark.sparkContext.parallelize(work, min(len(work), slots)).mapPartitions(task).collect()
    return sum(r for r, _ in counts), sum(b for _, b in counts)


def _write_row_groups(
    config, view_proto: bytes, start: datetime, end: datetime, rows: int, work: Iterator[tuple[str, int]]
) -> Iterator[tuple[int, int]]:
    """A Spark task: its row groups' interval rows into the online store, batch by batch."""
    from feast.infra.provider import get_provider
    from feast.protos.feast.core.FeatureView_pb2 import FeatureView as FeatureViewProto

    view = FeatureView.from_proto(FeatureViewProto.FromString(view_proto))
    join_keys, columns = view_columns(view)
    timestamp = view.batch_source.timestamp_field
    batches = (
        batch
        for path, group in work
        for batch in row_group_batches(path, [group], columns, timestamp, start, end, rows)
    )
    yield write_batches(get_provider(config), config, view, join_keys, batches)


__all__ = ["materialize_spark"]
