"""Prepared answers as a Spark job (the production profile, ``TELCOML_ENGINE=spark``).

``telcoml prepare`` (and the background prepare) computes every customer's ``/score``
answer and writes it to the Feast view ``crm_answers``. Embedded, one process reads each
customer's indicators back from the online store, chunk by chunk. Here the driver computes
each province's generation stamp once (``serving.prepared.generation``, as the embedded path
does) and spreads the latest snapshot's offline files over the executors: the same values
materialization put online, which the driver checks first (every view's materialization
interval in the Feast registry holds the snapshot), and broadcasts the champions the stamp
was computed from: every partition answers with them (a champion registered meanwhile cannot
slip answers in under the wrong generation), and no executor reads the registry or imports
MLflow. Each partition opens its own FeatureStore once, turns each Arrow batch into the
indicators the online store would give (``online_values``: Feast's types per field, ``None``
for a missing or NaN value, the latest event time as ``features_as_of``), and pushes the
answers with the embedded path's own ``push_answers`` (``score_frame``, ``customer_answer``).
The driver then records the province's generation.

No province is held in one process's memory: a partition holds an Arrow batch
(``spark.sql.execution.arrow.maxRecordsPerBatch``) and its answers. The executors write to
the online store itself: SQLite in local mode (the work directory's file), Redis on a cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from core.errors import NotReadyError
from core.io import snapshot_time
from core.logs import get_logger
from core.settings import Settings
from core.spark import ship
from features.build import offline_file
from serving.batch import latest_month_for
from serving.champions import ModelSet
from serving.online import Features, OnlineFeatures
from serving.prepared import (
    PreparedResult,
    code_digest,
    materialization,
    provinces_due,
    push_answers,
    record_prepared,
    snapshot_customers,
)

if TYPE_CHECKING:
    from feast import FeatureStore
    from pyspark import Broadcast
    from pyspark.sql import DataFrame, SparkSession

log = get_logger("telcoml.serving")

#: Python type of each Feast value type the indicator views use, as an online read returns it.
_PYTHON = {"INT64": int, "DOUBLE": float, "STRING": str}
_TS = "_ts_"  # prefix of each view's event time column in the partitions


def indicator_columns(store: FeatureStore, refs: Sequence[str]) -> list[tuple[str, str, str]]:
    """(indicator, view, Feast value type) of each online reference, in the lookup's order."""
    fields = {
        v.name: {f.name: f.dtype.to_value_type().name for f in v.features} for v in store.list_feature_views()
    }
    out, seen = [], set()
    for ref in refs:
        view, name = ref.split(":")
        if name not in seen:
            seen.add(name)
            out.append((name, view, fields[view][name]))
    return out


def online_values(batch: pa.RecordBatch, columns: Sequence[tuple[str, str, str]]) -> Features:
    """A batch of offline rows as ``OnlineFeatures.fetch`` gives them after materialization: each
    value of the Python type of its field (Feast stores an int64 field's value as an int, a
    double's as a float), ``None`` where null or NaN (Feast writes no value for either), a view
    without a row for the customer all ``None``, and ``features_as_of`` the latest event time of
    the customer's views, to the second."""
    data = {"msisdn": _objects([str(m) for m in batch.column("msisdn").to_pylist()])}
    names = batch.schema.names
    for name, _, kind in columns:
        if name not in names:  # a view without a file for this province-month (another province's own)
            data[name] = _objects([None] * batch.num_rows)
            continue
        cast = _PYTHON[kind]
        data[name] = _objects([None if _missing(v) else cast(v) for v in batch.column(name).to_pylist()])
    stamps = [batch.column(c).to_pylist() for c in names if c.startswith(_TS)]
    latest = [max((int(s.timestamp()) for s in row if s is not None), default=0) for row in zip(*stamps)]
    return Features(data, [datetime.fromtimestamp(s, UTC).isoformat() if s > 0 else None for s in latest])


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def snapshot_rows(
    spark: SparkSession, settings: Settings, province: str, month: str, views: Sequence[str]
) -> DataFrame:
    """The province-month's customers (its profile file) with every view's indicators and event
    time, other views joined on the phone number where they have the customer (the online store
    answers ``None`` for a view without the customer)."""
    from pyspark.sql import functions as F

    def read(view: str) -> DataFrame:
        frame = spark.read.parquet(str(offline_file(settings.offline_dir, view, province, month)))
        return frame.drop("created_timestamp").withColumnRenamed("event_timestamp", _TS + view)

    present = [v for v in views if offline_file(settings.offline_dir, v, province, month).exists()]
    joined = read("profile")
    for view in present:
        if view != "profile":
            joined = joined.join(read(view), "msisdn", "left")
    return joined.withColumn("msisdn", F.col("msisdn").cast("string")).where(F.col("province") == province)


def require_materialized(store: FeatureStore, settings: Settings, province: str, month: str, views) -> None:
    """The online store holds this snapshot: each view with a file for it was materialized over an
    interval holding the snapshot's time (else the offline rows are not what the service reads)."""
    at = snapshot_time(month).to_pydatetime()
    registered = {v.name: v for v in store.registry.list_feature_views(store.project, allow_cache=False)}
    for view in views:
        if not offline_file(settings.offline_dir, view, province, month).exists():
            continue
        intervals = registered[view].materialization_intervals
        if not any(start <= at <= end for start, end in intervals):
            raise NotReadyError(
                f"the {province} {month} snapshot of {view} is not in the {settings.online_store} online "
                "store: run `telcoml materialize` first"
            )


def prepare_partitions(
    settings: Settings,
    champions: Broadcast[bytes],
    stamp: str,
    columns: Sequence[tuple[str, str, str]],
    chunk_size: int,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function each partition runs: a FeatureStore once, then the embedded path's
    ``push_answers`` per chunk with the driver's ``champions`` (the set ``stamp`` was computed
    from); yields the number of answers written."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from features.store import open_store
        from serving.champions import partition_champions

        store = models = None
        written = 0
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if models is None:  # once per partition
                models, store = partition_champions(champions), open_store(settings)
            for start in range(0, batch.num_rows, chunk_size):
                values = online_values(batch.slice(start, chunk_size), columns)
                written += push_answers(store, values, models, stamp)
        yield pa.RecordBatch.from_pydict({"answers": pa.array([written], pa.int64())})

    return run


def prepare_answers_spark(
    spark: SparkSession,
    settings: Settings,
    models: ModelSet,
    provinces: Sequence[str] | None = None,
    chunk_size: int = 2000,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    skip_current: bool = False,
) -> PreparedResult:
    """``serving.prepared.prepare_answers`` as a Spark job: the same answers, generations and
    record of the provinces prepared."""
    from features.store import apply_repository

    started = time.perf_counter()
    store = apply_repository(settings)  # registers crm_answers in a repository applied before it existed
    watermark, code = materialization(store), code_digest()
    columns = indicator_columns(store, OnlineFeatures(settings).refs)
    views = list(dict.fromkeys(view for _, view, _ in columns))
    customers = snapshot_customers(settings)
    done: dict[str, int] = {}
    for province, _own, stamp in provinces_due(
        settings, models, provinces, customers, watermark, code, skip_current
    ):
        month = latest_month_for(settings, province)
        require_materialized(store, settings, province, month, views)
        advance = progress(province, len(customers[province])) if progress else None
        rows = snapshot_rows(spark, settings, province, month, views)
        rows = rows.repartition(spark.sparkContext.defaultParallelism)
        # the set the stamp names, shipped: an executor neither reads the registry nor imports MLflow
        champions = ship(spark, models.for_province(province))
        try:
            counts = rows.mapInArrow(
                prepare_partitions(settings, champions, stamp, columns, chunk_size), "answers long"
            ).collect()
        finally:
            champions.destroy()
        done[province] = sum(r["answers"] for r in counts)
        if advance:
            advance(len(customers[province]))
        if customers[province] and not done[province]:
            raise NotReadyError(f"no customer of {province}'s latest snapshot {month} was prepared")
        record_prepared(settings, province, stamp)
        log.info("prepared %d answers for %s with Spark (generation %s)", done[province], province, stamp)
    return PreparedResult(done, time.perf_counter() - started)


__all__ = ["prepare_answers_spark", "online_values", "snapshot_rows", "indicator_columns"]
