"""The indicator build as Spark jobs (the production profile, ``TELCOML_ENGINE=spark``).

The same pure functions as ``features.build``, spread over customers as well as provinces and
months, so no task and not the driver ever holds a whole province: memory follows
``customers_per_task``, not the province's size. The offline files hold the pandas build's
rows value for value (``tests/data/test_spark_build.py``), grouped by customer bucket:

1. **Split.** Each raw file row group (every table's partitions, read through ``pyarrow``
   as ``read_partition`` reads them, one at a time in tasks spread over the cores) is cut
   into the province's customer buckets: a stable hash of the phone number,
   ``ceil(subscribers / customers_per_task)`` buckets per province. Pieces travel as Arrow
   IPC, so no value is converted on the way.
2. **Aggregate.** Each (province, month, bucket) gathers its pieces, in file order, and runs
   ``aggregate_month`` over the bucket's subscribers.
3. **Snapshot.** Each (province, snapshot month, bucket) gathers its window's aggregates, in
   the order the pandas build keeps them, with the bucket's master rows, and runs
   ``indicators_at`` and ``offline_views``.
4. **Write.** The driver reads the views back in (province, month, bucket) order, a Spark
   partition at a time, and appends each bucket as row groups to the snapshot's files, which
   are renamed into place when the snapshot is whole (``core.io.AtomicParquetFiles``): the
   offline store's layout (``offline_file``), so Feast reads the same files whatever built them.

Every indicator is one customer's (``indicators_at`` never compares customers), which is what
makes a bucket a valid unit. Provinces' custom indicators (``features.custom``) are still
built with pandas afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import NotReadyError
from core.io import AtomicParquetFiles, remove_stale_temporaries
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
#: Customers per task when the settings do not say (``TELCOML_SPARK_CUSTOMERS_PER_TASK``).
CUSTOMERS_PER_TASK = 100_000
ROW_GROUPS_SCHEMA = "table string, province string, month string, path string, row_group int, buckets int"
#: What each stage hands the next, as its function makes it (Spark's schema is read off these).
PIECES = pa.schema(
    [
        ("province", pa.string()),
        ("month", pa.string()),
        ("bucket", pa.int32()),
        ("table", pa.string()),
        ("row_group", pa.int32()),
        ("content", pa.binary()),
    ]
)
AGGREGATES = pa.schema(
    [("province", pa.string()), ("month", pa.string()), ("bucket", pa.int32()), ("aggregate", pa.binary())]
)
FILES = pa.schema(
    [
        ("province", pa.string()),
        ("month", pa.string()),
        ("bucket", pa.int32()),
        ("subject", pa.string()),
        ("rows", pa.int64()),
        ("content", pa.binary()),
    ]
)


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


#: Multiplier and finalizer of the phone number hash (64-bit FNV prime, murmur3's fmix64).
_PRIME, _MIX1, _MIX2 = np.uint64(1099511628211), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)


def customer_buckets(msisdn: pa.Array | pa.ChunkedArray | pd.Series, buckets: int) -> np.ndarray:
    """Each phone number's bucket: a hash of the number's bytes, the same in every process and on
    every machine, so every table's rows of one customer meet in one task. Computed over the
    Arrow string buffers at once (a per-number Python hash was a sixth of the build)."""
    if isinstance(msisdn, pd.Series):
        msisdn = pa.array(msisdn.astype(str).to_numpy(dtype=object))
    numbers = pc.cast(msisdn, pa.large_string())
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks() if numbers.num_chunks else pa.array([], pa.large_string())
    offsets = np.frombuffer(numbers.buffers()[1], dtype=np.int64)[
        numbers.offset : numbers.offset + len(numbers) + 1
    ]
    lengths = np.diff(offsets)
    if not len(numbers) or not lengths.sum():
        return np.zeros(len(numbers), dtype=np.int64)
    data = np.frombuffer(numbers.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    width = int(lengths.max())
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        powers = np.cumprod(np.full(width, _PRIME, dtype=np.uint64))
        if (lengths == width).all():  # phone numbers are all one width: a column of bytes at a time
            digits = data.reshape(len(numbers), width)
            hashes = np.zeros(len(numbers), dtype=np.uint64)
            for i in range(width):
                hashes += digits[:, i].astype(np.uint64) * powers[i]
        else:
            starts = offsets[:-1] - offsets[0]
            position = np.arange(len(data)) - np.repeat(starts, lengths)
            hashes = np.zeros(len(numbers), dtype=np.uint64)
            filled = lengths > 0  # an empty number has no bytes (and no segment of its own)
            weighted = data.astype(np.uint64) * powers[position]
            hashes[filled] = np.add.reduceat(weighted, starts[filled])
        hashes ^= hashes >> np.uint64(33)
        hashes *= _MIX1
        hashes ^= hashes >> np.uint64(33)
        hashes *= _MIX2
        hashes ^= hashes >> np.uint64(33)
    return (hashes % np.uint64(buckets)).astype(np.int64)


def ipc_bytes(table: pa.Table) -> bytes:
    """A table as Arrow IPC: what Spark carries between the stages, types kept (uncompressed:
    Spark compresses what it shuffles)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(content: pa.Buffer | bytes) -> pa.Table:
    return pa.ipc.open_stream(content).read_all()


def _contents(table: pa.Table) -> list[pa.Buffer]:
    """The ``content`` cells of a stage's rows, without copying them."""
    return [cell.as_buffer() for cell in table.column("content")]


def _aggregate_bytes(aggregate: dict[str, np.ndarray]) -> bytes:
    return ipc_bytes(pa.table(aggregate))


def _aggregate_from(content: pa.Buffer) -> dict[str, np.ndarray]:
    table = from_ipc(content)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def row_groups(
    raw_dir: Path, windows: dict[tuple[str, str], list[str]], customers_per_task: int
) -> list[tuple[str, str, str | None, str, int, int]]:
    """The split stage's work: every row group of every raw file the snapshots read, with its
    province's bucket count (row group -1: a file without any, which still gives each bucket
    its empty piece). A missing partition is refused here, naming its path, before any Spark job."""
    months: dict[str, set[str]] = {}
    for (province, _), window in windows.items():
        months.setdefault(province, set()).update(window)
    work = []
    for province in sorted(months):
        files = [(t, None) for t in MASTER_TABLES] + [
            (t, m) for m in sorted(months[province]) for t in MONTHLY_TABLES
        ]
        buckets = None
        for table, month in files:
            path = partition_path(raw_dir, table, province, month)
            if not path.exists():  # read_partition's refusal, naming the same path
                raise NotReadyError(
                    f"raw partition missing: {path} (run `telcoml generate` or `telcoml ingest`)"
                )
            metadata = pq.ParquetFile(path).metadata
            if buckets is None:  # the subscriber master comes first and sets the buckets
                buckets = max(1, math.ceil(metadata.num_rows / customers_per_task))
            groups = range(metadata.num_row_groups) if metadata.num_row_groups else [-1]
            work += [(table, province, month, str(path), g, buckets) for g in groups]
    return work


def split_row_groups(work: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Stage 1's function: each row group's rows cut into their customers' buckets (one piece
    per bucket, empty ones included)."""
    for batch in work:
        for row in batch.to_pylist():
            if row["row_group"] < 0:
                table = pq.read_schema(row["path"]).empty_table()
            else:
                table = pq.ParquetFile(row["path"]).read_row_group(row["row_group"])
            table = plain_values(table)
            buckets = row["buckets"]
            bucket = customer_buckets(table.column("msisdn"), buckets)
            order = np.argsort(bucket, kind="stable")  # file order within a bucket
            bounds = np.searchsorted(bucket[order], np.arange(buckets + 1))
            yield pa.RecordBatch.from_pydict(
                {
                    "province": [row["province"]] * buckets,
                    "month": [row["month"]] * buckets,
                    "bucket": np.arange(buckets, dtype=np.int32),
                    "table": [row["table"]] * buckets,
                    "row_group": np.full(buckets, row["row_group"], dtype=np.int32),
                    "content": [
                        ipc_bytes(table.take(order[bounds[b] : bounds[b + 1]])) for b in range(buckets)
                    ],
                },
                schema=PIECES,
            )


def plain_values(table: pa.Table) -> pa.Table:
    """Dictionary columns (pandas categoricals, e.g. the phone numbers) as their values: a bucket's
    piece would otherwise carry the whole row group's dictionary, and every bucket would pay
    for every customer's numbers. The aggregates read values, not categories."""
    fields = [
        pa.field(f.name, f.type.value_type, f.nullable, f.metadata) if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _tables(pieces: pa.Table) -> dict[str, pd.DataFrame]:
    """A group's pieces as one frame per raw table, in file order: the rows ``read_partition``
    gives, the bucket's only."""
    pieces = pieces.sort_by([("table", "ascending"), ("row_group", "ascending")])
    names, contents = pieces.column("table").to_pylist(), _contents(pieces)
    grouped: dict[str, list[pa.Table]] = {}
    for name, content in zip(names, contents):
        grouped.setdefault(name, []).append(from_ipc(content))
    return {name: pa.concat_tables(parts).to_pandas() for name, parts in grouped.items()}


def month_aggregate(pieces: pa.Table) -> pa.Table:
    """Stage 2's function: one (province, month, bucket)'s raw rows and its subscribers ->
    ``aggregate_month``, as one row."""
    tables = _tables(pieces)
    index = pd.Index(tables.pop("subscribers")["msisdn"].astype(str))
    content = _aggregate_bytes(aggregate_month(index, tables))
    keys = {k: pieces.column(k)[0].as_py() for k in ("province", "month", "bucket")}
    return pa.Table.from_pydict(
        {**{k: [v] for k, v in keys.items()}, "aggregate": [content]}, schema=AGGREGATES
    )


def snapshot_files(created: pd.Timestamp) -> Callable[[pa.Table], pa.Table]:
    """Stage 3's function: a (province, snapshot, bucket)'s window of aggregates and its master
    rows -> the rows of every feature view's offline file for that bucket (one row each),
    stamped ``created`` (one stamp for the whole build)."""

    def run(parts: pa.Table) -> pa.Table:
        province, month, bucket = (parts.column(k)[0].as_py() for k in ("province", "snapshot", "bucket"))
        is_aggregate = pc.equal(parts.column("table"), "aggregate")
        masters = _tables(parts.filter(pc.invert(is_aggregate)))
        window = parts.filter(is_aggregate).sort_by("row_group")
        history = [_aggregate_from(c) for c in _contents(window)]
        frame = indicators_at(masters["subscribers"], masters["red_black_list"], history, month)
        views = offline_views(frame, created)
        return pa.Table.from_pydict(
            {
                "province": [province] * len(views),
                "month": [month] * len(views),
                "bucket": [bucket] * len(views),
                "subject": list(views),
                "rows": [len(v) for v in views.values()],
                "content": [ipc_bytes(pa.Table.from_pandas(v, preserve_index=False)) for v in views.values()],
            },
            schema=FILES,
        )

    return run


def build_indicators_spark(
    spark: SparkSession,
    raw_dir: Path,
    offline_dir: Path,
    provinces: Sequence[str],
    months: Sequence[str],
    progress: Callable[[int], None] | None = None,
    customers_per_task: int = CUSTOMERS_PER_TASK,
) -> int:
    """``features.build.build_indicators`` as Spark jobs: the same rows written, each task and
    the driver holding at most about ``customers_per_task`` customers' rows."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    raw_dir, offline_dir = Path(raw_dir).resolve(), Path(offline_dir)
    for stale in remove_stale_temporaries([raw_dir, offline_dir]):
        log.info("removed %s, left by an interrupted run", stale)
    windows = snapshot_windows(raw_dir, provinces, months)
    if not windows:
        return 0
    work = row_groups(raw_dir, windows, customers_per_task)
    window_rows = [(p, m, i, src) for (p, m), sources in windows.items() for i, src in enumerate(sources)]
    plan = spark.createDataFrame(window_rows, "province string, snapshot string, position int, month string")

    # stage 1: every row group cut into customer buckets (up to four tasks per core, each reading
    # its row groups one at a time)
    slots = spark.sparkContext.defaultParallelism * 4
    tasks = spark.createDataFrame(work, ROW_GROUPS_SCHEMA).repartition(min(len(work), slots))
    pieces = tasks.mapInArrow(split_row_groups, from_arrow_schema(PIECES))
    masters = pieces.where(F.col("month").isNull()).drop("month")
    monthly = pieces.where(F.col("month").isNotNull())

    # stage 2: each (province, month, bucket)'s rows with the bucket's subscribers
    needed = plan.select("province", "month").distinct()
    subscribers = needed.join(masters.where(F.col("table") == "subscribers"), "province")
    aggregates = (
        monthly.unionByName(subscribers)
        .groupBy("province", "month", "bucket")
        .applyInArrow(month_aggregate, from_arrow_schema(AGGREGATES))
    )

    # stage 3: each (province, snapshot, bucket)'s window of aggregates (in order) and master rows
    window = plan.join(aggregates, ["province", "month"]).select(
        "province",
        "snapshot",
        "bucket",
        F.lit("aggregate").alias("table"),
        F.col("position").alias("row_group"),
        F.col("aggregate").alias("content"),
    )
    snapshots = plan.select("province", "snapshot").distinct()
    master_rows = snapshots.join(masters, "province").select(
        "province", "snapshot", "bucket", "table", "row_group", "content"
    )
    created = pd.Timestamp.now(tz="UTC")
    files = (
        window.unionByName(master_rows)
        .groupBy("province", "snapshot", "bucket")
        .applyInArrow(snapshot_files(created), from_arrow_schema(FILES))
        # kept on the executors' disks: ordering samples its input first, which would run stage 3 twice
        .persist(StorageLevel.DISK_ONLY)
    )
    # in snapshot order, about one bucket per partition: what the driver holds at a time
    buckets = {w[1]: w[5] for w in work}
    parts = sum(buckets[province] for province, _ in windows)
    ordered = files.repartitionByRange(parts, "province", "month", "bucket").sortWithinPartitions(
        "province", "month", "bucket", "subject"
    )
    try:
        return _write_snapshots(ordered, offline_dir, set(windows), progress)
    finally:
        files.unpersist()


def _write_snapshots(
    files: DataFrame,
    offline_dir: Path,
    expected: set[tuple[str, str]],
    progress: Callable[[int], None] | None,
) -> int:
    """Stage 4: the driver appends each bucket's views to its snapshot's files, a Spark partition
    at a time, and publishes a snapshot's files together once its last bucket is in."""
    rows, written = 0, []
    out, empty = AtomicParquetFiles(), {}
    try:
        for row in files.toLocalIterator():
            snapshot = (row["province"], row["month"])
            if not written or snapshot != written[-1]:  # a new snapshot: the one before is whole
                if written:
                    _publish(out, empty, progress)
                written.append(snapshot)
            path = offline_file(offline_dir, row["subject"], *snapshot)
            if row["rows"]:
                out.write(from_ipc(row["content"]), path)
            else:  # an empty bucket's columns may have no type: kept only if no bucket has rows
                empty[path] = from_ipc(row["content"])
            if row["subject"] == "profile":  # every subject has the snapshot's customers; count them once
                rows += row["rows"]
        if written:
            _publish(out, empty, progress)
    finally:
        out.discard()  # a failed build leaves the snapshot being written as it was
    missing = expected - set(written)
    if missing:
        raise NotReadyError(f"the Spark build wrote no snapshot for {sorted(missing)}: see the Spark log")
    return rows


def _publish(
    out: AtomicParquetFiles, empty: dict[Path, pa.Table], progress: Callable[[int], None] | None
) -> None:
    """Rename one snapshot's files into place (a file no bucket had rows for: an empty one)."""
    for path, table in empty.items():
        if path not in out:
            out.write(table, path)
    out.commit()
    empty.clear()
    if progress:
        progress(1)
