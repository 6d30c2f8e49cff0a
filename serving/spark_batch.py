"""Batch scoring as a Spark job (the production profile, ``TELCOML_ENGINE=spark``).

The indicator build writes a province-month's subject files row-aligned, row group by row
group (one per customer bucket on the Spark path). The driver reads only their footers, loads
the champions the settings' MLflow registry names and broadcasts them (every part is scored
with the same versions), and hands the row groups out as tasks; each Spark partition reads
its row groups of every subject side by side (no join, no shuffle), scores them with the same
``interface_rows`` as ``serving.batch.score_province`` and writes its part of the CRM file
itself, Parquet and CSV, from Python. A customer's CRM row is therefore the same either way,
CSV included (``tests/serving/test_spark_batch.py``).

The CRM file is partitioned by province and snapshot month, as Spark and Hive read it
(the folder names carry those two columns; the files do not):
``crm_interface/spark/{parquet,csv}/province=GD/snapshot_month=2026-04/part-*``. The parts
are written into a staging folder and the province-month's folder replaced by a rename once
every part is in, so scoring a province again replaces its partition only, and a failed or
killed job leaves the previous file as it was (the next run cleans up after it).

Each scored batch is also recorded for weekly monitoring, as ``score_province`` records it:
the executor writes it under the week and province (so the work directory must be storage
every executor sees), named after the run and its rows, so a task Spark retries replaces its
records instead of recording its customers twice.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from core.errors import NotReadyError, TelcomlError
from core.io import process_gone
from core.settings import Settings
from core.spark import ship
from serving.batch import (
    BatchResult,
    interface_rows,
    interface_schema,
    joined_chunk,
    latest_month_for,
    scoring_lock,
    snapshot_files,
)
from serving.champions import ModelSet, load_champions

if TYPE_CHECKING:
    from pyspark import Broadcast
    from pyspark.sql import SparkSession

#: The CRM file's partition columns (folders), in this order.
PARTITIONS = ["province", "snapshot_month"]
#: Customers a task reads, scores and writes at a time (its memory, with the champions).
CHUNK_ROWS = 50_000
#: What each partition reports to the driver: its part and the customers written.
WRITTEN = pa.schema([("part", pa.string()), ("rows", pa.int64())])
#: The files a format's partition holds, by format.
FORMATS = ("parquet", "csv")


def spark_output_dir(settings: Settings) -> Path:
    return settings.workdir / "crm_interface" / "spark"


def partition_dir(root: Path, province: str, month: str) -> Path:
    """The folder of one province-month in the partitioned CRM file."""
    return Path(root) / f"province={province}" / f"snapshot_month={month}"


def file_schema() -> pa.Schema:
    """The CRM file's columns inside a partition's files: all but the partition columns."""
    schema = interface_schema()
    return pa.schema([f for f in schema if f.name not in PARTITIONS])


def aligned_row_groups(files: dict[str, Path], province: str, month: str) -> list[int]:
    """Each row group's customer count, the same in every subject file (read from the footers);
    files written otherwise are refused, as ``serving.batch.joined_chunk`` refuses them."""
    counts = {}
    for subject, path in files.items():
        metadata = pq.ParquetFile(path).metadata
        counts[subject] = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    first = next(iter(counts.values()))
    for subject, groups in counts.items():
        if groups != first:
            raise TelcomlError(
                f"offline files of {province} {month} are not row-aligned ({subject}: row groups of "
                f"{groups[:3]}... customers, not {first[:3]}...); rebuild them with `telcoml build`"
            )
    return first


def score_parts(
    settings: Settings,
    champions: Broadcast[bytes],
    province: str,
    month: str,
    files: dict[str, Path],
    staging: Path,
    scored_at: str,
    record: bool = True,
    chunk_rows: int = CHUNK_ROWS,
):
    """The function each partition runs on its row groups: each chunk of every subject read side
    by side, scored with ``interface_rows`` and the driver's ``champions``, written to the
    partition's part (Parquet and CSV, under ``staging``) and, with ``record``, recorded."""

    def run(tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from monitoring.record import predictions_from_interface, score_rows, write_partitioned
        from serving.champions import partition_champions

        groups = sorted(g for batch in tasks for g in batch.column("row_group").to_pylist())
        if not groups:
            return
        models = partition_champions(champions)
        readers = {s: pq.ParquetFile(path) for s, path in files.items()}
        chunks = zip(*(r.iter_batches(batch_size=chunk_rows, row_groups=groups) for r in readers.values()))
        part = f"part-{groups[0]:05d}"
        paths = {kind: partition_dir(staging / kind, province, month) / f"{part}.{kind}" for kind in FORMATS}
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        schema, rows = file_schema(), 0
        run_id = staging.name.rsplit("-", 1)[1]  # the staging folder's last part
        with (
            pq.ParquetWriter(paths["parquet"], schema) as parquet,
            pacsv.CSVWriter(paths["csv"], schema) as csv,
        ):
            for k, batches in enumerate(chunks):
                indicators = joined_chunk(dict(zip(readers, batches)), province, month)
                table = interface_rows(models, indicators, month, scored_at)
                if record:  # named by run and rows: a retried task replaces its records
                    predictions = predictions_from_interface(table)
                    rows_scored = score_rows(settings, indicators, predictions, models.names, "batch")
                    write_partitioned(settings, rows_scored, "batch", name=f"batch-{run_id}-{part}-{k}")
                table = table.select(schema.names)
                parquet.write_table(table)
                csv.write_table(table)
                rows += table.num_rows
        yield pa.RecordBatch.from_pylist([{"part": part, "rows": rows}], schema=WRITTEN)

    return run


def score_province_spark(
    spark: SparkSession,
    settings: Settings,
    province: str,
    month: str | None = None,
    output_dir: Path | None = None,
    record: bool = True,
    models: ModelSet | None = None,
) -> BatchResult:
    """``serving.batch.score_province`` as a Spark job; ``parquet`` and ``csv`` of the result are
    the partitioned folders (the province-month's partition is in ``province=XX/snapshot_month=M``).
    ``models``: the champions already loaded (default: read from the settings' registry). A second
    run scoring the same province into the same folder meanwhile is refused (``scoring_lock``)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    started = time.perf_counter()
    province = province.upper()
    month = month or latest_month_for(settings, province)
    out = Path(output_dir or spark_output_dir(settings)).resolve()
    with scoring_lock(out, province):
        restore_interrupted(out, province)
        files = snapshot_files(settings, province, month)
        groups = aligned_row_groups(files, province, month)
        customers = sum(groups)
        if customers == 0:
            raise NotReadyError(f"no customers in the {province} {month} snapshot")
        champions = ship(spark, (models or load_champions(settings)).for_province(province))
        scored_at = datetime.now(UTC).isoformat(timespec="seconds")
        staging = out / f".staging-{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        slices = min(len(groups), spark.sparkContext.defaultParallelism * 2)
        try:
            # consecutive row groups per partition (a range made in the JVM: no Python stage before
            # the scoring's); each partition writes one part of the file
            tasks = spark.range(0, len(groups), numPartitions=slices).withColumnRenamed("id", "row_group")
            parts = tasks.mapInArrow(
                score_parts(settings, champions, province, month, files, staging, scored_at, record),
                from_arrow_schema(WRITTEN),
            ).collect()
            written = sum(p["rows"] for p in parts)
            if written != customers:
                raise TelcomlError(
                    f"the Spark batch scoring of {province} {month} wrote {written} of {customers} "
                    "customers: see the Spark log; the CRM file was left as it was"
                )
            for kind in FORMATS:
                replace_partition(
                    partition_dir(staging / kind, province, month), partition_dir(out / kind, province, month)
                )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            champions.destroy()
    return BatchResult(province, month, written, time.perf_counter() - started, out / "parquet", out / "csv")


def replace_partition(new: Path, final: Path) -> None:
    """Put ``new`` in the place of the partition folder ``final``, by renames: the old folder is
    set aside first and removed last (``restore_interrupted`` puts it back if a kill comes between)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    aside = final.with_name(f".{final.name}.replaced-{uuid.uuid4().hex[:8]}")
    if final.exists():
        os.replace(final, aside)
    os.replace(new, final)
    shutil.rmtree(aside, ignore_errors=True)


def restore_interrupted(out: Path, province: str = "*") -> list[Path]:
    """Undo what a killed run left under the CRM file's folder: an old partition of ``province``
    (default: any) set aside and not replaced goes back; set-aside folders already replaced, and
    the staging folders of runs whose process is gone, are removed. Returns the folders restored
    or removed. The caller holds ``province``'s ``scoring_lock``: a live run's set-aside folder
    must not pass for a killed run's."""
    if not out.is_dir():
        return []
    touched = []
    for aside in sorted(out.glob(f"*/province={province}/.snapshot_month=*.replaced-*")):
        final = aside.with_name(aside.name[1:].rsplit(".replaced-", 1)[0])
        if final.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, final)
        touched.append(aside)
    prefix = f".staging-{os.uname().nodename}-"
    for staging in sorted(out.glob(f"{prefix}*")):
        pid = staging.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and process_gone(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
            touched.append(staging)
    return touched
