"""Materialization that streams: the latest snapshot into the online store in bounded batches.

Feast 0.67's ``materialize`` reads a view's whole interval from the offline store into one
Arrow table, deduplicates it, converts every row to protobuf values and writes them in one
call (``online_write_batch_size`` unset): a process holds a province's snapshot several times
over, which at millions of customers is more than a service host has. Here each view's
offline files are read a record batch at a time (``pyarrow`` ``iter_batches``; row groups
whose event-time statistics fall outside the interval are not read), each batch filtered to
the interval, converted with Feast's own ``_convert_arrow_to_proto`` and written with the
provider's ``online_write_batch``, exactly what Feast's materialization does with a batch;
then the interval is recorded in the registry as Feast records it (``apply_materialization``,
the view's state through ``MATERIALIZING`` to ``AVAILABLE_ONLINE``). A view that fails part
way is not recorded: its earlier state is restored, and the prepared answers' generation
(read from these records) does not change.

Deduplication relies on the offline store's layout: one row per customer per snapshot file,
and one snapshot time per file (``features.build``); the online store keeps the row with the
latest event time either way (Redis skips older rows, SQLite replaces).

Chosen by ``TELCOML_MATERIALIZE=stream`` (``telcoml materialize``); Feast's own stays the
default: it is the reference the equality test compares with. ``TELCOML_MATERIALIZE=spark``
(``materialize_spark``) writes the same batches from Spark tasks, split by offline row group,
for an online store loaded by a whole cluster at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast import FeatureStore, FeatureView
from feast.feature_view import FeatureViewState
from feast.utils import _convert_arrow_to_proto, make_tzaware

from core.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Rows per batch read, converted and written (a batch of 20k rows of one view is a few MB).
BATCH_ROWS = 20_000


@dataclass
class StreamedView:
    view: str
    rows: int
    batches: int
    seconds: float


def interval_batches(
    files: Sequence[str | Path],
    columns: Sequence[str],
    timestamp: str,
    start: datetime,
    end: datetime,
    rows: int,
) -> Iterator[pa.RecordBatch]:
    """The rows of ``files`` with ``start <= timestamp <= end`` (Feast's interval), ``rows`` at a
    time; row groups whose statistics lie outside the interval are skipped unread."""
    for path in files:
        groups = interval_row_groups(path, timestamp, start, end)
        if groups:
            yield from row_group_batches(path, groups, columns, timestamp, start, end, rows)


def interval_row_groups(path: str | Path, timestamp: str, start: datetime, end: datetime) -> list[int]:
    """The row groups of a file whose event-time statistics may hold rows of the interval."""
    parquet = pq.ParquetFile(path)
    where = parquet.schema_arrow.get_field_index(timestamp)
    return [
        g
        for g in range(parquet.num_row_groups)
        if _may_hold(parquet.metadata.row_group(g), where, start, end)
    ]


def row_group_batches(
    path: str | Path,
    groups: Sequence[int],
    columns: Sequence[str],
    timestamp: str,
    start: datetime,
    end: datetime,
    rows: int,
) -> Iterator[pa.RecordBatch]:
    """The interval's rows of some row groups of one file, ``rows`` at a time."""
    low, high = pa.scalar(start, pa.timestamp("us", "UTC")), pa.scalar(end, pa.timestamp("us", "UTC"))
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=rows, row_groups=list(groups), columns=list(columns)):
        stamps = pc.cast(batch.column(timestamp), pa.timestamp("us", "UTC"))
        batch = batch.filter(pc.and_(pc.greater_equal(stamps, low), pc.less_equal(stamps, high)))
        if batch.num_rows:
            yield batch


def _may_hold(group, column: int, start: datetime, end: datetime) -> bool:
    stats = group.column(column).statistics
    if stats is None or not stats.has_min_max:
        return True
    low, high = (make_tzaware(v) if isinstance(v, datetime) else None for v in (stats.min, stats.max))
    return low is None or high is None or (low <= end and high >= start)


def view_columns(view: FeatureView) -> tuple[dict, list[str]]:
    """A view's join keys (name -> value type) and the columns materialization reads."""
    source = view.batch_source
    join_keys = {e.name: e.dtype.to_value_type() for e in view.entity_columns}
    columns = [*join_keys, *(f.name for f in view.features), source.timestamp_field]
    if source.created_timestamp_column:
        columns.append(source.created_timestamp_column)
    return join_keys, columns


def view_files(store: FeatureStore, view: FeatureView) -> list[str]:
    """A view's offline files (its source's path, a pattern relative to the repository)."""
    return sorted(str(p) for p in Path(store.repo_path).glob(view.batch_source.path))


def write_batches(provider, config, view: FeatureView, join_keys: dict, batches) -> tuple[int, int]:
    """Record batches into the online store as Feast's materialization writes one (its own
    conversion, the provider's ``online_write_batch``); returns (rows, batches) written."""
    written = count = 0
    for batch in batches:
        provider.online_write_batch(config, view, _convert_arrow_to_proto(batch, view, join_keys), None)
        written += batch.num_rows
        count += 1
    return written, count


def _recorded(
    store: FeatureStore,
    view: FeatureView,
    start: datetime,
    end: datetime,
    write: Callable[[], tuple[int, int]],
) -> tuple[int, int]:
    """Run ``write`` (-> rows, batches) between Feast's registry steps of a materialization: the view
    through ``MATERIALIZING``, then the interval recorded; if ``write`` fails, the earlier state
    back and the interval not noted."""
    previous = getattr(view, "state", FeatureViewState.STATE_UNSPECIFIED)
    if previous == FeatureViewState.MATERIALIZING:
        previous = FeatureViewState.GENERATED
    elif previous != FeatureViewState.STATE_UNSPECIFIED:
        if not view.state.can_transition_to(FeatureViewState.MATERIALIZING):
            raise ValueError(
                f"FeatureView {view.name} cannot transition from {view.state.name} to MATERIALIZING."
            )
        view.state = FeatureViewState.MATERIALIZING
        store.registry.apply_feature_view(view, store.project, commit=True)
    try:
        written = write()
    except BaseException:
        if previous != FeatureViewState.STATE_UNSPECIFIED:
            view.state = previous
            store.registry.apply_feature_view(view, store.project, commit=True)
        raise
    store.registry.apply_materialization(view, store.project, start, end)
    return written


def stream_view(
    store: FeatureStore, view: FeatureView, start: datetime, end: datetime, rows: int = BATCH_ROWS
) -> StreamedView:
    """One view's interval into the online store, then recorded in the registry (as Feast does)."""
    started = time.perf_counter()
    join_keys, columns = view_columns(view)
    files = view_files(store, view)
    provider = store._get_provider()

    def write() -> tuple[int, int]:
        batches = interval_batches(files, columns, view.batch_source.timestamp_field, start, end, rows)
        return write_batches(provider, store.config, view, join_keys, batches)

    written, batches = _recorded(store, view, start, end, write)
    return StreamedView(view.name, written, batches, time.perf_counter() - started)


def materialize_stream(
    store: FeatureStore, start: datetime, end: datetime, views: Sequence[str], rows: int = BATCH_ROWS
) -> list[StreamedView]:
    """``store.materialize(start, end, views)`` a record batch at a time (views in the given order)."""
    start, end = make_tzaware(start), make_tzaware(end)
    registered = {v.name: v for v in store.registry.list_feature_views(store.project, allow_cache=False)}
    return [stream_view(store, registered[name], start, end, rows) for name in views]


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
    start, end = make_tzaware(start), make_tzaware(end)
    registered = {v.name: v for v in store.registry.list_feature_views(store.project, allow_cache=False)}
    config = store.config
    out = []
    for name in views:
        view = registered[name]
        started = time.perf_counter()
        timestamp = view.batch_source.timestamp_field
        work = [
            (path, g)
            for path in view_files(store, view)
            for g in interval_row_groups(path, timestamp, start, end)
        ]

        def write(view=view, work=work) -> tuple[int, int]:
            if not work:
                return 0, 0
            task = partial(_write_row_groups, config, view.to_proto().SerializeToString(), start, end, rows)
            slots = spark.sparkContext.defaultParallelism * 4  # a task writes its row groups one by one
            counts = spark.sparkContext.parallelize(work, min(len(work), slots)).mapPartitions(task).collect()
            return sum(r for r, _ in counts), sum(b for _, b in counts)

        written, batches = _recorded(store, view, start, end, write)
        out.append(StreamedView(name, written, batches, time.perf_counter() - started))
    return out


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


__all__ = [
    "materialize_stream",
    "materialize_spark",
    "stream_view",
    "interval_batches",
    "StreamedView",
    "BATCH_ROWS",
]
