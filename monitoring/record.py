"""Record what the models saw and said, as it happens, for the weekly monitoring job.

Serving and batch scoring hand every scored customer to a ``ScoreLog``: the indicators
the models read, each task's prediction, the registry URI of the model that answered
it and when it happened.
Rows are buffered and written as Parquet files partitioned by ISO week and province
(``<workdir>/monitoring/scores/week=2026-W44/province=GD/<source>-<id>.parquet``), each
written to a temporary name and renamed, so a reader never sees half a file.

No phone number is stored whole: ``msisdn_masked`` is for people (138****2343) and
``customer_key`` — a keyed hash — lets matured labels be joined later without keeping
the number. The key (salt) lives in the work directory, never in git.

Serving first appends each answered customer to a journal (``monitoring.journal``) so a
killed server loses none of them.

When nothing can be written (disk full), at most ``MAX_HELD_ROWS`` scored customers are
held in memory; beyond that the newest are dropped, with a warning saying how many
(and ``telcoml_monitoring_records_dropped_total`` on serving's ``/metrics``).
"""

from __future__ import annotations

import atexit
import os
import secrets
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import indicators as lib
from core.io import atomic_write_parquet
from core.logs import get_logger
from core.msisdn import mask_numbers
from core.settings import Settings
from core.tasks import TASKS

log = get_logger("telcoml.monitoring")

INDICATOR_IDS = [i.id for i in lib.CATALOGUE]
#: Columns of a scored frame that are not indicators (everything else is recorded).
NOT_INDICATORS = ("msisdn", "features_as_of", "event_timestamp", "created_timestamp")
#: Scored customers held in memory at most while their rows cannot be written (disk full,
#: journal unwritable); beyond it the newest are dropped and counted. A row is ~1.4 KB in
#: memory (70 MB in all); with a write attempt's copies a worker peaked 190 MB above its
#: start under a disk-full flood of 100,000 or 200,000 answers alike, where the unbounded
#: buffer held all of them (+250 MB per 100,000 and growing). ~200 s of traffic at 250/s.
MAX_HELD_ROWS = 50_000


def iso_week(moment: datetime | date) -> str:
    """``2026-W44`` for a date or time (ISO 8601 week, Monday first)."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def live_week(month: str) -> str:
    """The first full week a month-end snapshot was served: the Monday after it, e.g. 2026-10 -> 2026-W45."""
    end = (pd.Period(month, "M").end_time + pd.Timedelta(days=1)).date()
    return iso_week(end + timedelta(days=(7 - end.weekday()) % 7))


def week_bounds(week: str) -> tuple[date, date]:
    """Monday and Sunday of an ISO week like ``2026-W44``."""
    from core.errors import ConfigurationError

    try:
        year, number = week.split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise ConfigurationError(f"week must look like 2026-W44, got {week!r}") from None
    return monday, date.fromisocalendar(int(year), int(number), 7)


def monitoring_dir(settings: Settings) -> Path:
    return settings.workdir / "monitoring"


def scores_dir(settings: Settings) -> Path:
    return monitoring_dir(settings) / "scores"


def _salt(settings: Settings) -> bytes:
    """The work directory's hashing salt, created once (0600), never committed."""
    path = monitoring_dir(settings) / ".customer_key_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(secrets.token_hex(16))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path) if not path.exists() else tmp.unlink()
    return path.read_text().strip().encode()


def customer_keys(settings: Settings, msisdns) -> np.ndarray:
    """A keyed hash of each number (SipHash with the work directory's salt, as uint64):
    joins labels without the number, vectorised (a batch chunk of 200k takes ~30 ms)."""
    numbers = pd.Series(np.asarray(msisdns, dtype=object)).astype(str)
    return pd.util.hash_pandas_object(numbers, index=False, hash_key=_salt(settings)[:16].decode()).to_numpy()


def predictions_from_answers(answers: list[dict]) -> pd.DataFrame:
    """The recorded prediction columns from the service's answers (one per customer).

    An evaluation a customer's province has no champion for is recorded empty.
    """
    return typed_predictions(
        {
            t.prediction_column: [(a.get(name) or {}).get(t.kind.answer_field) for a in answers]
            for name, t in TASKS.items()
        }
    )


def predictions_from_interface(table) -> pd.DataFrame:
    """The recorded prediction columns from a CRM interface chunk (batch scoring): each
    task's first interface column (grade, score, probability, best class)."""
    return typed_predictions(
        {
            t.prediction_column: table.column(t.kind.crm_fields(name)[0][0]).to_pandas()
            for name, t in TASKS.items()
        }
    )


def typed_predictions(columns: dict) -> pd.DataFrame:
    """Grades stay integers (empty where a province has no such model), so they compare as categories."""
    frame = pd.DataFrame(columns)
    return frame.astype(
        {t.prediction_column: t.kind.recorded_dtype for t in TASKS.values() if t.kind.recorded_dtype}
    )


def score_rows(
    settings: Settings,
    indicators: pd.DataFrame,
    predictions: pd.DataFrame,
    models: dict[str, str],
    source: str,
    scored_at: datetime | None = None,
    week: str | None = None,
) -> pd.DataFrame:
    """The monitoring record of scored customers (pure apart from reading the salt).

    ``indicators`` holds ``msisdn``, ``province`` and the indicator columns (the ones
    absent are recorded empty); ``predictions`` is aligned row by row; ``models`` maps each
    task to the registry URI that answered it (``models:/telcoml-churn-gd/3``). ``week``
    overrides the week of ``scored_at`` — only for replaying history.
    """
    if scored_at is None:  # a replayed week is stamped with its Monday, so timeliness reads as it was
        scored_at = (
            datetime.combine(week_bounds(week)[0], datetime.min.time(), tzinfo=UTC)
            if week
            else datetime.now(UTC)
        )
    n = len(indicators)
    msisdns = indicators["msisdn"].astype(str)
    columns = {
        "customer_key": customer_keys(settings, msisdns),
        "msisdn_masked": mask_numbers(msisdns),
        "province": indicators["province"].astype(str).to_numpy(),
        "week": np.full(n, week or iso_week(scored_at)),
        "source": np.full(n, source),
    }
    stamp = pd.Timestamp(scored_at)
    stamp = stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
    columns["scored_at"] = pd.DatetimeIndex(np.full(n, stamp.tz_convert(None).to_datetime64())).tz_localize(
        "UTC"
    )
    columns["features_as_of"] = (
        pd.to_datetime(indicators["features_as_of"], utc=True, errors="coerce").array
        if "features_as_of" in indicators
        else pd.DatetimeIndex([pd.NaT] * n, tz="UTC")
    )
    for column in INDICATOR_IDS:
        if column != "province":
            columns[column] = indicators[column].to_numpy() if column in indicators else np.full(n, np.nan)
    for column in indicators.columns.difference([*INDICATOR_IDS, *NOT_INDICATORS], sort=False):
        columns[column] = indicators[column].to_numpy()  # a province's custom indicators
    for t in TASKS.values():
        columns[t.prediction_column] = predictions[t.prediction_column].array
    for task, uri in models.items():
        columns[f"model_{task}"] = np.full(n, str(uri))
    # one frame from whole columns: inserting ~60 columns one by one was a quarter of a batch chunk's record
    frame = pd.DataFrame(columns)
    return frame


def write_partitioned(
    settings: Settings, frame: pd.DataFrame, source: str, name: str | None = None
) -> list[Path]:
    """Write rows under their week and province, each file atomically; returns the files.

    ``name`` (without ``.parquet``) names every part the same: writing the same rows again
    replaces the files instead of recording the customers twice (a journal segment).
    """
    written = []
    for (week, province), part in frame.groupby(["week", "province"], sort=False):
        folder = scores_dir(settings) / f"week={week}" / f"province={province}"
        stem = name or f"{source}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        path = folder / f"{stem}.parquet"
        table = pa.Table.from_pandas(part.drop(columns=["week", "province"]), preserve_index=False)
        # dictionary-encoding 40 float columns was 85% of the write; strings keep it
        strings = [
            f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ]
        atomic_write_parquet(table, path, use_dictionary=strings)
        written.append(path)
    return written


# -- the journal: every answered request on disk before its answer leaves -----------------


class ScoreLog:
    """Buffers scored customers and writes them every ``flush_rows`` rows or ``flush_seconds``.

    Thread-safe; a background timer flushes a quiet buffer and ``close`` (also run at
    interpreter exit) writes what is left. Recording never fails a request: a write
    error is logged and the rows are kept for the next attempt — at most
    ``MAX_HELD_ROWS`` of them: while writes fail, newer rows beyond that are dropped,
    counted in ``dropped`` and reported at the next attempt. After a failure the buffer
    is retried by the timer (or ``flush``/``close``), not by every ``record``.
    """

    def __init__(
        self,
        settings: Settings,
        source: str,
        flush_rows: int = 5000,
        flush_seconds: float = 30.0,
        enabled: bool = True,
    ):
        self.settings = settings
        self.source = source
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.enabled = enabled
        #: rows dropped since the start because the buffer was full while writes failed
        self.dropped = 0
        self._unreported = 0
        self._failing = False
        self._rows: list[pd.DataFrame] = []
        self._count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if enabled and flush_seconds > 0:
            self._timer = threading.Thread(target=self._tick, name=f"score-log-{source}", daemon=True)
            self._timer.start()
        atexit.register(self.close)

    @property
    def held_rows(self) -> int:
        """Rows waiting in memory to be written."""
        return self._count

    def record(
        self,
        indicators: pd.DataFrame,
        predictions: pd.DataFrame,
        models: dict[str, str],
        scored_at: datetime | None = None,
        week: str | None = None,
    ) -> None:
        """Keep the rows for the week; write them once the buffer is full."""
        if not self.enabled or len(indicators) == 0:
            return
        rows = score_rows(
            self.settings,
            indicators.reset_index(drop=True),
            predictions.reset_index(drop=True),
            models,
            self.source,
            scored_at,
            week,
        )
        self.add(rows)

    def add(self, rows: pd.DataFrame) -> None:
        """Keep rows already built (``score_rows``, ``journal_rows``); write them once the buffer is full."""
        if not self.enabled or len(rows) == 0:
            return
        with self._lock:
            if self._failing:  # nothing is being written: hold no more than the bound
                room = max(MAX_HELD_ROWS - self._count, 0)
                if len(rows) > room:
                    self.dropped += len(rows) - room
                    self._unreported += len(rows) - room
                    rows = rows.iloc[:room].copy()
            if len(rows):
                self._rows.append(rows)
                self._count += len(rows)
            full = self._count >= self.flush_rows and not self._failing
        if full:
            self.flush()

    def flush(self) -> list[Path]:
        with self._lock:
            rows, self._rows, self._count = self._rows, [], 0
        if not rows:
            return []
        frame = rows[0] if len(rows) == 1 else pd.concat(rows, ignore_index=True)
        try:
            written = write_partitioned(self.settings, frame, self.source)
        except Exception as err:  # monitoring must not take the service down; keep the oldest rows
            with self._lock:
                kept = pd.concat([frame, *self._rows], ignore_index=True) if self._rows else frame
                over = max(len(kept) - MAX_HELD_ROWS, 0)
                if over:
                    kept = kept.iloc[:MAX_HELD_ROWS].copy()  # a slice would keep all of it alive
                    self.dropped += over
                    self._unreported += over
                self._rows, self._count, self._failing = [kept], len(kept), True
                dropped, self._unreported = self._unreported, 0
            log.warning(
                "could not write %d monitoring rows (%s): %d kept for the next flush (at most %d), "
                "%d newer ones dropped since the last attempt",
                len(frame),
                err,
                len(kept),
                MAX_HELD_ROWS,
                dropped,
            )
            return []
        with self._lock:
            self._failing = False
            dropped, self._unreported = self._unreported, 0
        if dropped:
            log.warning("monitoring rows written again; %d were dropped while writes failed", dropped)
        return written

    def _tick(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()


def read_week(settings: Settings, week: str, province: str | None = None) -> pd.DataFrame:
    """Every row recorded in ``week`` (for one province, or all), or an empty frame."""
    base = scores_dir(settings) / f"week={week}"
    folders = [base / f"province={province.upper()}"] if province else sorted(base.glob("province=*"))
    tables = []
    for folder in folders:
        code = folder.name.split("=", 1)[1]
        for path in sorted(folder.glob("*.parquet")):
            table = pq.read_table(path)
            tables.append(table.add_column(2, "province", pa.array(np.full(table.num_rows, code))))
    if not tables:
        return pd.DataFrame()
    # Arrow unifies the files' schemas: a column empty in one file (null type) takes the others'
    # type, and one a file lacks (another province's indicator) is empty there
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    frame.insert(3, "week", week)
    return frame


def recorded_weeks(settings: Settings) -> list[str]:
    """Weeks with recorded scores, oldest first."""
    return sorted(
        p.name.split("=", 1)[1] for p in scores_dir(settings).glob("week=*") if any(p.rglob("*.parquet"))
    )
