"""Batch scoring: every customer of a province into the CRM interface file.

Reads the province's month-end snapshot from the offline store's files in chunks (the
five subject files of one province-month are written row-aligned by the indicator
build, so chunk ``k`` of each file is the same customers; this is checked), scores
each chunk with every champion, and streams Parquet and CSV to temporary files that
replace the interface files only when complete. Memory is bounded by one chunk. One run at a
time scores a province into a folder (``scoring_lock``): a second is refused, not interleaved.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import indicators as lib
from core.errors import NotReadyError, TelcomlError
from core.io import AtomicTableFiles, file_lock, remove_stale_temporaries
from core.settings import Settings
from core.tasks import TASKS, crm_columns
from features.build import offline_file, offline_snapshots
from features.provinces import custom_subject
from monitoring.record import ScoreLog, live_week, monitoring_dir, predictions_from_interface
from serving import retention
from serving.champions import ModelSet, load_champions

#: The CRM interface file's fixed columns around the tasks' own (``Task.crm_fields``).
HEAD_COLUMNS = [("msisdn", pa.string()), ("province", pa.string()), ("snapshot_month", pa.string())]
#: model_methods: how each evaluation was answered (``credit_grade=scorecard;churn=xgboost;...``)
#: retention_listed: on the province's retention list (``telcoml retention``); empty without a list
TAIL_COLUMNS = [
    ("retention_listed", pa.bool_()),
    ("model_methods", pa.string()),
    ("model_versions", pa.string()),
    ("scored_at", pa.string()),
]


def interface_schema() -> pa.Schema:
    """The CRM interface file's columns, the same whatever models a province has."""
    tasks = [
        pa.field(column, pa.type_for_alias(arrow_type))
        for t in TASKS.values()
        for column, arrow_type in t.crm_fields()
    ]
    return pa.schema([*HEAD_COLUMNS, *tasks, *TAIL_COLUMNS])


@dataclass
class BatchResult:
    province: str
    month: str
    rows: int
    seconds: float
    parquet: Path
    csv: Path


def latest_month_for(settings: Settings, province: str) -> str:
    months = [month for _, month in offline_snapshots(settings.offline_dir, province=province)]
    if not months:
        raise NotReadyError(f"no indicator snapshots for province {province} in {settings.offline_dir}")
    return max(months)


def snapshot_files(settings: Settings, province: str, month: str) -> dict[str, Path]:
    """subject -> the province-month's offline file: every subject's, and the province's own
    indicators where it has them (written row-aligned with the others)."""
    custom = offline_file(settings.offline_dir, custom_subject(province), province, month)
    subjects = [*lib.SUBJECTS, *([custom_subject(province)] if custom.exists() else [])]
    files = {s: offline_file(settings.offline_dir, s, province, month) for s in subjects}
    if not all(path.exists() for path in files.values()):
        raise NotReadyError(f"no indicator snapshot for {province} {month} in {settings.offline_dir}")
    return files


def joined_chunk(batches: dict[str, pa.RecordBatch], province: str, month: str) -> pd.DataFrame:
    """The same customers' rows of every subject file, side by side (one row per customer,
    ``features_as_of`` the snapshot's time); refused if the files' rows are not the same customers."""
    frames = {subject: batch.to_pandas() for subject, batch in batches.items()}
    base = next(iter(frames.values()))
    for subject, frame in frames.items():
        if not frame["msisdn"].equals(base["msisdn"]):
            raise TelcomlError(
                f"offline files of {province} {month} are not row-aligned ({subject}); "
                "rebuild them with `telcoml build`"
            )
    return pd.concat(
        [base[["msisdn"]], base["event_timestamp"].rename("features_as_of")]
        + [f.drop(columns=["msisdn", "event_timestamp", "created_timestamp"]) for f in frames.values()],
        axis=1,
    )


def snapshot_chunks(settings: Settings, province: str, month: str, chunk_rows: int):
    """The province-month's indicators, ``chunk_rows`` customers at a time, all subjects joined."""
    readers = {s: pq.ParquetFile(path) for s, path in snapshot_files(settings, province, month).items()}
    iterators = [r.iter_batches(batch_size=chunk_rows) for r in readers.values()]
    for batches in zip(*iterators):
        yield joined_chunk(dict(zip(readers, batches)), province, month)


def interface_rows(models: ModelSet, indicators: pd.DataFrame, month: str, scored_at: str) -> pa.Table:
    """The CRM interface columns for one chunk: phone number, grade and its handling, scores,
    channel, versions.

    The columns are always the same; an evaluation the province has no model for (its own
    data may label only some) is left empty in them.
    """
    n = len(indicators)
    p = models.probabilities(indicators)  # one encoded matrix, inplace_predict of each booster
    columns: dict[str, np.ndarray] = {
        "msisdn": indicators["msisdn"].astype(str).to_numpy(),
        "province": indicators["province"].astype(str).to_numpy(),
        "snapshot_month": np.full(n, month),
    }
    # the province's cut-offs and handling apply, if its file has them; the black list caps the grade
    columns.update(crm_columns(p, models.config, indicators))
    if models.retention is not None and models.retention.task in p:
        columns["retention_listed"] = retention.listed(
            p[models.retention.task], indicators, models.config, models.retention
        )
    columns["model_methods"] = np.full(n, ";".join(f"{k}={v}" for k, v in models.methods.items()))
    columns["model_versions"] = np.full(n, ";".join(f"{k}={v}" for k, v in models.versions.items()))
    columns["scored_at"] = np.full(n, scored_at)
    schema = interface_schema()
    return pa.table(
        [
            pa.array(columns[f.name], type=f.type) if f.name in columns else pa.nulls(n, f.type)
            for f in schema
        ],
        schema=schema,
    )


@contextlib.contextmanager
def scoring_lock(out_dir: Path, province: str) -> Iterator[None]:
    """Hold the lock of ``province``'s CRM file in ``out_dir`` for the block; refuse at once when
    another run holds it (two runs would each replace the file the other is writing)."""
    lock = Path(out_dir) / f".{province}.scoring.lock"
    with file_lock(lock, wait=False) as held:
        if not held:
            raise TelcomlError(
                f"another batch scoring of {province} is writing its CRM file in {out_dir} "
                f"(it holds {lock.name}); run again when it has finished"
            )
        yield


def score_province(
    settings: Settings,
    models: ModelSet,
    province: str,
    month: str | None = None,
    chunk_rows: int = 200_000,
    output_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    record: bool = True,
    record_week: str | None = None,
) -> BatchResult:
    """Score every customer of ``province`` into ``crm_<province>_<month>.parquet`` and ``.csv``.

    With ``record``, each scored chunk also goes to weekly monitoring (under the current
    week, or ``record_week`` when replaying a past snapshot).
    """
    started = time.perf_counter()
    province = province.upper()
    models = models.for_province(province)  # its own champions where it has them, its cut-offs
    month = month or latest_month_for(settings, province)
    out_dir = Path(output_dir or settings.workdir / "crm_interface")
    out_dir.mkdir(parents=True, exist_ok=True)
    parquet_path = out_dir / f"crm_{province}_{month}.parquet"
    csv_path = out_dir / f"crm_{province}_{month}.csv"
    rows = 0
    with scoring_lock(out_dir, province):
        remove_stale_temporaries([out_dir])  # a killed run's half-written files
        scored_at = datetime.now(UTC).isoformat(timespec="seconds")
        recorder = ScoreLog(settings, "batch", flush_rows=chunk_rows, flush_seconds=0, enabled=record)
        with AtomicTableFiles() as files:  # both files replaced together, or neither
            for chunk in snapshot_chunks(settings, province, month, chunk_rows):
                table = interface_rows(models, chunk, month, scored_at)
                recorder.record(chunk, predictions_from_interface(table), models.names, week=record_week)
                files.write(table, parquet_path)
                files.write(table, csv_path)
                rows += table.num_rows
                if progress:
                    progress(table.num_rows)
            if not rows:
                raise NotReadyError(f"no customers in the {province} {month} snapshot")
        recorder.close()
    return BatchResult(province, month, rows, time.perf_counter() - started, parquet_path, csv_path)


def replay_month(
    settings: Settings,
    month: str,
    provinces: list[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> str:
    """Backfill history: batch-score a past snapshot into the records of the week it went live.

    The CRM files go to ``monitoring/replay/``, never over the real interface files.
    Returns the week recorded.
    """
    week = live_week(month)
    models = load_champions(settings)
    snapshots = [province for province, _ in offline_snapshots(settings.offline_dir, month=month)]
    if not snapshots and not provinces:
        raise NotReadyError(
            f"no indicator snapshots for {month} in {settings.offline_dir}: run `telcoml build`"
        )
    for province in provinces or snapshots:
        score_province(
            settings,
            models,
            province,
            month,
            output_dir=monitoring_dir(settings) / "replay",
            record_week=week,
            progress=(lambda n, p=province: progress(p, n)) if progress else None,
        )
    return week
