"""The indicator build as Spark jobs (the production profile, ``TELCOML_ENGINE=spark``).

The same pure functions as ``features.build``, spread over customers as well as provinces, so no
task and not the driver ever holds a whole province: memory follows ``customers_per_task``, not
the province's size. The offline files hold the pandas build's rows value for value
(``tests/data/test_spark_build.py``), grouped by customer bucket:

1. **Split.** Each raw file row group (every table's partitions the snapshots read, through
   ``pyarrow`` as ``read_partition`` reads them, in tasks spread over the cores) is cut into its
   province's customer buckets: a stable hash of the phone number, ``ceil(subscribers /
   customers_per_task)`` buckets per province. A task writes its row group as one Arrow IPC file
   in the build's staging directory, one record batch per bucket, in file order within a bucket.
2. **Snapshots.** Each (province, bucket) task reads its batch of every piece, a month at a time
   (the file's footer and that batch: no other customer's rows), and runs ``snapshots_of``, the
   pandas build's own loop, over the bucket's subscribers; it writes each snapshot month's views
   as IPC files in the staging directory.
3. **Write.** The driver appends the buckets' views, in bucket order, as row groups to each
   snapshot's files, which are renamed into place when the snapshot is whole
   (``core.io.AtomicTableFiles``): the offline store's layout (``offline_file``), so Feast reads
   the same files whatever built them. The staging directory is then removed.

Rows travel between the stages as files, not through Spark: Spark schedules the tasks and retries
a failed one (each file is written whole or not at all), and only a few numbers per task come
back to the driver. The raw directory and the staging directory must be reachable by path from
every executor (on a cluster: a shared file system), as the raw files already are for stage 1.

Every indicator is one customer's (``indicators_at`` never compares customers), which is what
makes a bucket a valid unit. Provinces' custom indicators (``features.custom``) are still
built with pandas afterwards.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import NotReadyError
from core.io import AtomicTableFiles, atomic_write_arrow, process_gone, remove_stale_temporaries
from core.logs import get_logger
from features.build import (
    WINDOW_MONTHS,
    history_before,
    offline_file,
    offline_views,
    snapshots_of,
)
from features.schemas import TABLES, partition_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = get_logger(__name__)

MONTHLY_TABLES = [name for name, t in TABLES.items() if t.monthly]
#: The master tables a snapshot reads besides its window's aggregates.
MASTER_TABLES = ("subscribers", "red_black_list")
#: Customers per task when the settings do not say (``TELCOML_SPARK_CUSTOMERS_PER_TASK``).
CUSTOMERS_PER_TASK = 100_000
ROW_GROUPS_SCHEMA = "table string, province string, month string, path string, row_group int, buckets int"
BUCKETS_SCHEMA = "province string, bucket int, history string, months string"
#: What a stage's task tells the driver: the files it wrote, and their rows.
WRITTEN = pa.schema(
    [
        ("province", pa.string()),
        ("month", pa.string()),
        ("bucket", pa.int32()),
        ("subject", pa.string()),
        ("rows", pa.int64()),
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


def plain_values(table: pa.Table) -> pa.Table:
    """Dictionary columns (pandas categoricals, e.g. the phone numbers) as their values: a bucket's
    batch would otherwise carry the whole row group's dictionary, and every bucket would pay
    for every customer's numbers. The aggregates read values, not categories."""
    fields = [
        pa.field(f.name, f.type.value_type, f.nullable, f.metadata) if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def piece_path(staging: Path, province: str, table: str, month: str | None, row_group: int) -> Path:
    """Stage 1's file for one raw row group: its rows, one record batch per bucket."""
    return Path(staging) / "pieces" / province / table / (month or "master") / f"{row_group + 1:06d}.arrow"


def view_path(staging: Path, province: str, month: str, bucket: int, subject: str) -> Path:
    """Stage 2's file for one bucket's rows of one feature view of one snapshot."""
    return Path(staging) / "views" / province / month / f"{bucket:06d}" / f"{subject}.arrow"


def split_into_buckets(staging: Path) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Stage 1's function: each row group's rows cut into their customers' buckets and written as
    one IPC file, batch ``b`` holding bucket ``b``'s rows in file order (empty ones included)."""

    def run(work: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in work:
            for row in batch.to_pylist():
                if row["row_group"] < 0:  # a file without row groups: every bucket gets none
                    table = pq.read_schema(row["path"]).empty_table()
                else:
                    table = pq.ParquetFile(row["path"]).read_row_group(row["row_group"])
                table = plain_values(table)
                buckets = row["buckets"]
                bucket = customer_buckets(table.column("msisdn"), buckets)
                order = np.argsort(bucket, kind="stable")  # file order within a bucket
                bounds = np.searchsorted(bucket[order], np.arange(buckets + 1))
                ordered = table.take(order).combine_chunks()
                whole = (
                    ordered.to_batches()[0]
                    if len(ordered)
                    else pa.RecordBatch.from_pylist([], ordered.schema)
                )
                path = piece_path(staging, row["province"], row["table"], row["month"], row["row_group"])
                atomic_write_arrow(
                    (whole.slice(bounds[b], bounds[b + 1] - bounds[b]) for b in range(buckets)),
                    ordered.schema,
                    path,
                )
                yield pa.RecordBatch.from_pylist(
                    [
                        {
                            "province": row["province"],
                            "month": row["month"],
                            "subject": row["table"],
                            "rows": len(table),
                        }
                    ],
                    schema=WRITTEN,
                )

    return run


def bucket_rows(
    staging: Path, province: str, bucket: int, table: str, month: str | None = None
) -> pd.DataFrame:
    """One bucket's rows of one raw partition, in file order: its batch of every piece (each
    file's footer and that batch are read, nothing of the other buckets)."""
    folder = piece_path(staging, province, table, month, 0).parent
    batches = []
    for piece in sorted(folder.glob("*.arrow")):
        with pa.OSFile(str(piece)) as source:
            batches.append(pa.ipc.open_file(source).get_batch(bucket))
    if not batches:
        raise NotReadyError(f"the Spark build's split left nothing in {folder}: see the Spark log")
    return pa.Table.from_batches(batches).to_pandas()


def bucket_snapshots(
    staging: Path, created: pd.Timestamp
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Stage 2's function: a (province, bucket)'s raw rows, a month at a time, through the pandas
    build's ``snapshots_of`` -> every snapshot month's views for that bucket, as IPC files
    (stamped ``created``: one stamp for the whole build)."""

    def run(tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in tasks:
            for task in batch.to_pylist():
                province, bucket = task["province"], task["bucket"]
                read = partial(bucket_rows, staging, province, bucket)
                snapshots = snapshots_of(
                    read("subscribers"),
                    read("red_black_list"),
                    json.loads(task["history"]),
                    json.loads(task["months"]),
                    lambda month, read=read: {t: read(t, month) for t in MONTHLY_TABLES},
                )
                written = []
                for month, frame in snapshots:
                    for subject, view in offline_views(frame, created).items():
                        table = pa.Table.from_pandas(view, preserve_index=False)
                        path = view_path(staging, province, month, bucket, subject)
                        atomic_write_arrow(table.to_batches(), table.schema, path)
                        written.append(
                            {
                                "province": province,
                                "month": month,
                                "bucket": bucket,
                                "subject": subject,
                                "rows": len(table),
                            }
                        )
                yield pa.RecordBatch.from_pylist(written, schema=WRITTEN)

    return run


def build_indicators_spark(
    spark: SparkSession,
    raw_dir: Path,
    offline_dir: Path,
    provinces: Sequence[str],
    months: Sequence[str],
    progress: Callable[[int], None] | None = None,
    customers_per_task: int = CUSTOMERS_PER_TASK,
    staging_dir: Path | None = None,
) -> int:
    """``features.build.build_indicators`` as Spark jobs: the same rows written, each task and
    the driver holding at most about ``customers_per_task`` customers' rows. ``staging_dir``
    (default: ``spark-staging`` beside the offline directory) holds the stages' files during
    the build; every executor must reach it by path."""
    from pyspark.sql.pandas.types import from_arrow_schema

    raw_dir, offline_dir = Path(raw_dir).resolve(), Path(offline_dir)
    staging_root = Path(staging_dir or offline_dir.parent / "spark-staging").resolve()
    for stale in remove_stale_temporaries([raw_dir, offline_dir]) + remove_abandoned_builds(staging_root):
        log.info("removed %s, left by an interrupted run", stale)
    windows = snapshot_windows(raw_dir, provinces, months)
    if not windows:
        return 0
    work = row_groups(raw_dir, windows, customers_per_task)
    buckets = {w[1]: w[5] for w in work}
    staging = staging_root / f"build-{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    written = from_arrow_schema(WRITTEN)
    slots = spark.sparkContext.defaultParallelism * 4
    try:
        # stage 1: every row group cut into customer buckets (up to four tasks per core, each
        # reading its row groups one at a time)
        tasks = spark.createDataFrame(work, ROW_GROUPS_SCHEMA).repartition(min(len(work), slots))
        tasks.mapInArrow(split_into_buckets(staging), written).collect()

        # stage 2: each (province, bucket)'s snapshots, one task each; the history before the
        # first snapshot is its window's earlier months (the ones stage 1 split)
        jobs = [
            (province, b, json.dumps(windows[(province, months[0])][:-1]), json.dumps(list(months)))
            for province in sorted(buckets)
            for b in range(buckets[province])
        ]
        views = (
            spark.createDataFrame(jobs, BUCKETS_SCHEMA)
            .repartition(len(jobs))
            .mapInArrow(bucket_snapshots(staging, pd.Timestamp.now(tz="UTC")), written)
            .collect()
        )
        return _write_snapshots(staging, offline_dir, list(windows), buckets, views, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_abandoned_builds(staging_root: Path) -> list[Path]:
    """The staging directories of builds whose driver (this machine's pid in the name) is gone:
    a killed build's stage files, removed by the next build."""
    removed = []
    prefix = f"build-{os.uname().nodename}-"
    for folder in sorted(staging_root.glob(f"{prefix}*")):
        pid = folder.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and process_gone(int(pid)):  # not a name of ours: left alone
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _write_snapshots(
    staging: Path,
    offline_dir: Path,
    snapshots: Sequence[tuple[str, str]],
    buckets: dict[str, int],
    views: Sequence,
    progress: Callable[[int], None] | None,
) -> int:
    """Stage 3: the driver appends each bucket's views to its snapshot's files, a bucket at a
    time, and publishes a snapshot's files together once its last bucket is in."""
    by_snapshot: dict[tuple[str, str], list] = {}
    for view in views:
        by_snapshot.setdefault((view["province"], view["month"]), []).append(view)
    missing = [
        s for s in snapshots if {v["bucket"] for v in by_snapshot.get(s, [])} != set(range(buckets[s[0]]))
    ]
    if missing:
        raise NotReadyError(f"the Spark build wrote no snapshot for {sorted(missing)}: see the Spark log")
    rows = 0
    out, empty = AtomicTableFiles(), {}
    try:
        for province, month in snapshots:
            for view in sorted(by_snapshot[(province, month)], key=lambda v: (v["bucket"], v["subject"])):
                path = offline_file(offline_dir, view["subject"], province, month)
                source = view_path(staging, province, month, view["bucket"], view["subject"])
                with pa.OSFile(str(source)) as f:
                    table = pa.ipc.open_file(f).read_all()
                if view["rows"]:
                    out.write(table, path)
                else:  # an empty bucket's columns may have no type: kept only if no bucket has rows
                    empty[path] = table
                if view["subject"] == "profile":  # every subject has the snapshot's customers; count once
                    rows += view["rows"]
            for path, table in empty.items():
                if path not in out:
                    out.write(table, path)
            out.commit()
            empty.clear()
            if progress:
                progress(1)
    finally:
        out.discard()  # a failed build leaves the snapshot being written as it was
    return rows
