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
default: it is the reference the equality test compares with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    low, high = pa.scalar(start, pa.timestamp("us", "UTC")), pa.scalar(end, pa.timestamp("us", "UTC"))
    for path in files:
        parquet = pq.ParquetFile(path)
        where = parquet.schema_arrow.get_field_index(timestamp)
        groups = [
            g
            for g in range(parquet.num_row_groups)
            if _may_hold(parquet.metadata.row_group(g), where, start, end)
        ]
        if not groups:
            continue
        for batch in parquet.iter_batches(batch_size=rows, row_groups=groups, columns=list(columns)):
            stamps = pc.cast(batch.column(timestamp), pa.timestamp("us", "UTC"))
            keep = pc.and_(pc.greater_equal(stamps, low), pc.less_equal(stamps, high))
            batch = batch.filter(keep)
            if batch.num_rows:
                yield batch


def _may_hold(group, column: int, start: datetime, end: datetime) -> bool:
    stats = group.column(column).statistics
    if stats is None or not stats.has_min_max:
        return True
    low, high = (make_tzaware(v) if isinstance(v, datetime) else None for v in (stats.min, stats.max))
    return low is None or high is None or (low <= end and high >= start)


def stream_view(
    store: FeatureStore, view: FeatureView, start: datetime, end: datetime, rows: int = BATCH_ROWS
) -> StreamedView:
    """One view's interval into the online store, then recorded in the registry (as Feast does)."""
    started = time.perf_counter()
    source = view.batch_source
    join_keys = {e.name: e.dtype.to_value_type() for e in view.entity_columns}
    columns = [*join_keys, *(f.name for f in view.features), source.timestamp_field]
    if source.created_timestamp_column:
        columns.append(source.created_timestamp_column)
    files = sorted(str(p) for p in Path(store.repo_path).glob(source.path))
    provider = store._get_provider()

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
    written = batches = 0
    try:
        for batch in interval_batches(files, columns, source.timestamp_field, start, end, rows):
            provider.online_write_batch(
                store.config, view, _convert_arrow_to_proto(batch, view, join_keys), None
            )
            written += batch.num_rows
            batches += 1
    except BaseException:  # not recorded as materialized: the earlier state back, the interval not noted
        if previous != FeatureViewState.STATE_UNSPECIFIED:
            view.state = previous
            store.registry.apply_feature_view(view, store.project, commit=True)
        raise
    store.registry.apply_materialization(view, store.project, start, end)
    return StreamedView(view.name, written, batches, time.perf_counter() - started)


def materialize_stream(
    store: FeatureStore, start: datetime, end: datetime, views: Sequence[str], rows: int = BATCH_ROWS
) -> list[StreamedView]:
    """``store.materialize(start, end, views)`` a record batch at a time (views in the given order)."""
    start, end = make_tzaware(start), make_tzaware(end)
    registered = {v.name: v for v in store.registry.list_feature_views(store.project, allow_cache=False)}
    return [stream_view(store, registered[name], start, end, rows) for name in views]


__all__ = ["materialize_stream", "stream_view", "interval_batches", "StreamedView", "BATCH_ROWS"]
