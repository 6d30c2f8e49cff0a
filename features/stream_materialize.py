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
(``features.spark_materialize``) writes the same batches from Spark tasks, split by offline
row group, for an online store loaded by a whole cluster at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast import FeatureStore, FeatureView
from feast.feature_view import FeatureViewState
from feast.utils import _convert_arrow_to_proto, make_tzaware

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


def recorded_materialization(
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


def materialize_views(
    store: FeatureStore,
    start: datetime,
    end: datetime,
    views: Sequence[str],
    write: Callable[[FeatureView, datetime, datetime], tuple[int, int]],
) -> list[StreamedView]:
    """Each view's interval (views in the given order) written by ``write(view, start, end)`` ->
    (rows, batches), between Feast's registry steps (``recorded_materialization``)."""
    start, end = make_tzaware(start), make_tzaware(end)
    registered = {v.name: v for v in store.registry.list_feature_views(store.project, allow_cache=False)}
    out = []
    for name in views:
        view = registered[name]
        started = time.perf_counter()
        written, batches = recorded_materialization(store, view, start, end, partial(write, view, start, end))
        out.append(StreamedView(name, written, batches, time.perf_counter() - started))
    return out


def stream_rows(
    store: FeatureStore, view: FeatureView, start: datetime, end: datetime, rows: int = BATCH_ROWS
) -> tuple[int, int]:
    """One view's interval into the online store from this process, a record batch at a time."""
    join_keys, columns = view_columns(view)
    timestamp = view.batch_source.timestamp_field
    batches = interval_batches(view_files(store, view), columns, timestamp, start, end, rows)
    return write_batches(store._get_provider(), store.config, view, join_keys, batches)


def materialize_stream(
    store: FeatureStore, start: datetime, end: datetime, views: Sequence[str], rows: int = BATCH_ROWS
) -> list[StreamedView]:
    """``store.materialize(start, end, views)`` a record batch at a time (views in the given order)."""
    return materialize_views(store, start, end, views, partial(stream_rows, store, rows=rows))


__all__ = [
    "materialize_stream",
    "materialize_views",
    "stream_rows",
    "write_batches",
    "view_columns",
    "view_files",
    "interval_row_groups",
    "row_group_batches",
    "interval_batches",
    "StreamedView",
    "BATCH_ROWS",
]
