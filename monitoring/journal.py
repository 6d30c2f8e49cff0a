"""A journal of answered customers that outlives the server, turned into monitoring records.

Serving does not keep answers only in memory until they are written: each answered
request is first appended to a *journal* (``<workdir>/monitoring/wal/``, ``ScoreJournal``)
before the answer leaves, so a server killed with SIGKILL (or OOM-killed) loses none of
the customers it answered. One ``os.write`` on an ``O_APPEND`` file puts the entry in
the kernel's page cache, which outlives the process; no ``fsync``: that would only add
a power cut or kernel crash to what is covered, at a disk flush per answer. A journal
segment is turned into Parquet (named after the segment, so doing it twice writes the
same files) and only then deleted. Segments a dead server left behind are turned into
Parquet by ``recover_journal``: when a server starts and before the weekly job reads.
A writer holds an ``flock`` on its lock file while it runs, so a segment is recovered
only once its writer is gone (a lock dies with its process, even on SIGKILL; a pid
could be reused).

The journal holds what the rows are built from, whole phone numbers included: its
directory is 0700 and its files 0600, and a segment lives only until its rows are in
Parquet (seconds to ``record_flush_seconds``), where numbers are masked and keyed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import struct
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from core.logs import get_logger
from core.settings import Settings
from core.tasks import TASKS
from monitoring.record import (
    iso_week,
    monitoring_dir,
    score_rows,
    typed_predictions,
    write_partitioned,
)

log = get_logger("telcoml.monitoring")

#: The journal's directory and files: only the service's own user reads whole numbers.
JOURNAL_DIR_MODE = 0o700
JOURNAL_FILE_MODE = 0o600
JOURNAL_SUFFIX = ".wal"

#: An entry on disk: its body's length and CRC-32, then the body. A write cut short (a
#: kill in the middle, a full disk) leaves a short or mismatched last entry: reading stops
#: there, and that request had not been answered yet.
_FRAME = struct.Struct("<II")
#: A body starts with its kind, when it was answered (epoch seconds) and its models' JSON length.
_BODY = struct.Struct("<cdH")
_LIVE, _PREPARED = b"L", b"P"
#: A prepared entry: the packed indicators' length, then the packed indicators and answer.
_PACKED_LENGTH = struct.Struct("<I")


def journal_dir(settings: Settings) -> Path:
    return monitoring_dir(settings) / "wal"


def _private_dir(path: Path) -> None:
    """The journal's directory, readable by the service's user only."""
    path.mkdir(parents=True, exist_ok=True, mode=JOURNAL_DIR_MODE)
    if path.stat().st_mode & 0o777 != JOURNAL_DIR_MODE:
        os.chmod(path, JOURNAL_DIR_MODE)


def _plain(value):
    """NumPy scalars (a grade, a score) and times as the values JSON takes."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be journaled")


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_plain).encode()


def _framed(kind: bytes, scored_at: float | None, models: Mapping[str, str], payload: bytes) -> bytes:
    models_json = _json(dict(models))
    body = _BODY.pack(kind, time.time() if scored_at is None else scored_at, len(models_json))
    body += models_json + payload
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def _predictions(answers: Sequence[dict]) -> dict[str, list]:
    """Each task's recorded prediction from the service's answers (as ``predictions_from_answers``)."""
    return {
        t.prediction_column: [(a.get(name) or {}).get(t.kind.answer_field) for a in answers]
        for name, t in TASKS.items()
    }


def live_entry(
    indicators: Mapping[str, Sequence],
    as_of: Sequence[str | None],
    answers: Sequence[dict],
    models: Mapping[str, str],
    scored_at: float | None = None,
) -> bytes:
    """The journal entry of customers scored live: their indicators column by column (as
    the service holds them), when the indicators were taken, each task's prediction and
    the models that answered. Only the predictions are kept from the answers: reasons and
    guidance are not recorded."""
    payload = {
        "indicators": {k: v.tolist() if hasattr(v, "tolist") else list(v) for k, v in indicators.items()},
        "as_of": list(as_of),
        "predictions": _predictions(answers),
    }
    return _framed(_LIVE, scored_at, models, _json(payload))


def prepared_entry(
    indicators: bytes, answer: bytes, models: Mapping[str, str], scored_at: float | None = None
) -> bytes:
    """The journal entry of one customer answered from a prepared answer: its indicators and
    answer exactly as stored (``serving.prepared``: zlib-compressed JSON), unpacked only
    when the entry is converted, so the request pays for no decompression."""
    return _framed(_PREPARED, scored_at, models, _PACKED_LENGTH.pack(len(indicators)) + indicators + answer)


@dataclass(frozen=True)
class JournalEntry:
    """One answered request read back: each customer's indicators (with ``features_as_of``)
    as a record, and each task's predictions in the same order."""

    scored_at: float
    models: dict[str, str]
    indicators: list[dict]
    predictions: dict[str, list]


def _entry(body: bytes) -> JournalEntry:
    kind, scored_at, size = _BODY.unpack_from(body)
    start = _BODY.size + size
    models = json.loads(body[_BODY.size : start])
    if kind == _LIVE:
        payload = json.loads(body[start:])
        names = [*payload["indicators"], "features_as_of"]
        values = zip(*payload["indicators"].values(), payload["as_of"])
        return JournalEntry(scored_at, models, [dict(zip(names, v)) for v in values], payload["predictions"])
    if kind == _PREPARED:
        (packed,) = _PACKED_LENGTH.unpack_from(body, start)
        start += _PACKED_LENGTH.size
        record = json.loads(zlib.decompress(body[start : start + packed]))
        answer = json.loads(zlib.decompress(body[start + packed :]))
        return JournalEntry(scored_at, models, [record], _predictions([answer]))
    raise ValueError(f"unknown journal entry kind {kind!r}")


def read_entries(data: bytes) -> tuple[list[JournalEntry], int]:
    """The whole entries in ``data`` and how many bytes after them were not one (a torn last write)."""
    entries, offset = [], 0
    view = memoryview(data)
    while offset + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        body = view[offset + _FRAME.size : offset + _FRAME.size + length]
        if len(body) < length or zlib.crc32(body) != crc:
            break
        entries.append(_entry(bytes(body)))
        offset += _FRAME.size + length
    return entries, len(data) - offset


def _iso_weeks(stamps: pd.DatetimeIndex) -> np.ndarray:
    days = stamps.normalize()
    weeks = {day: iso_week(day) for day in days.unique()}
    return np.array([weeks[day] for day in days], dtype=object)


def journal_rows(settings: Settings, entries: Sequence[JournalEntry], source: str) -> pd.DataFrame:
    """The monitoring rows of journaled requests, each stamped with when it was answered.

    Built in one pass per set of models (a reload, another province's champions), whatever
    the number of requests: building a frame per request was most of the old hand-off's
    cost (11.9 s of CPU for 7,500 customers scored live one by one; 0.7 s here, and as
    much for 7,500 prepared answers, whose unpacking dominates).
    """
    groups: dict[tuple, list[JournalEntry]] = {}
    for entry in entries:
        groups.setdefault(tuple(sorted(entry.models.items())), []).append(entry)
    parts = []
    for models, group in groups.items():
        sizes = [len(e.indicators) for e in group]
        # records, not columns: pandas builds a frame from dicts in C, and a customer
        # without one of the group's indicators (another province's own) gets it empty
        indicators = pd.DataFrame.from_records([r for e in group for r in e.indicators])
        predictions = typed_predictions(
            {
                t.prediction_column: [v for e in group for v in e.predictions[t.prediction_column]]
                for t in TASKS.values()
            }
        )
        rows = score_rows(settings, indicators, predictions, dict(models), source)
        stamps = pd.to_datetime(np.repeat([e.scored_at for e in group], sizes), unit="s", utc=True)
        stamps = stamps.round("us").as_unit("us")  # as a time recorded directly is
        rows["scored_at"] = stamps
        rows["week"] = _iso_weeks(stamps)
        parts.append(rows)
    if not parts:
        return pd.DataFrame()
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _segment_source(path: Path) -> str:
    """``api-4242`` of ``api-4242-4242-9f2c01ab-000003.wal`` (source, pid, token: the writer; number)."""
    return path.stem.rsplit("-", 3)[0]


def convert_segment(settings: Settings, path: Path) -> int:
    """Write a journal segment's customers to Parquet, each part named after the segment
    (converting it twice writes the same files); returns how many customers it held."""
    entries, torn = read_entries(path.read_bytes())
    if torn:
        log.warning(
            "%s ends with %d bytes of a write cut short (a request not yet answered)", path.name, torn
        )
    if not entries:
        return 0
    source = _segment_source(path)
    rows = journal_rows(settings, entries, source)
    write_partitioned(settings, rows, source, name=path.stem)
    return len(rows)


class ScoreJournal:
    """One writer's journal: append-only segments, one entry per answered request.

    A segment is appended to until sealed (``due``), then converted to Parquet by its
    writer and deleted (``release``). The writer holds an exclusive ``flock`` on its lock
    file (``<source>-<pid>-<token>.lock``) for as long as it runs, which is how
    ``recover_journal`` tells a dead writer's segments from a live one's: one descriptor
    however many segments wait for a failing conversion. Not thread-safe: the caller
    serializes (``DeferredScoreLog``).
    """

    def __init__(self, settings: Settings, source: str):
        self.directory = journal_dir(settings)
        self.source = source
        #: pid and a random token: a pid reused after a restart never names the same files
        self.writer = f"{source}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._number = 0
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened_at = 0.0
        #: customers in the open segment
        self.customers = 0
        #: sealed segments not yet released, oldest first
        self.sealed: list[Path] = []

    def append(self, entry: bytes, customers: int) -> None:
        """One ``os.write`` of a whole entry; ``OSError`` (a full disk) leaves no part of it behind."""
        if self._fd is None:
            self._open()
        try:
            written = os.write(self._fd, entry)
        except OSError:
            self._cut()
            raise
        if written != len(entry):
            self._cut()
            raise OSError(errno.ENOSPC, f"journal write cut short ({written} of {len(entry)} bytes)")
        self._size += written
        self.customers += customers

    def due(self, rows: int, seconds: float) -> bool:
        """Whether the open segment is to be sealed: ``rows`` customers in it, or ``seconds``
        old (0: at every look)."""
        return self._fd is not None and (
            self.customers >= rows or seconds <= 0 or time.monotonic() - self._opened_at >= seconds
        )

    def seal(self) -> None:
        """Append no more to the open segment; the next entry opens a new one."""
        if self._fd is None:
            return
        os.close(self._fd)
        if self._size:
            self.sealed.append(self._path)
        else:  # nothing in it
            self._path.unlink(missing_ok=True)
        self._fd, self._path, self._size, self.customers = None, None, 0, 0

    def release(self, path: Path) -> None:
        """A sealed segment whose customers are in Parquet: delete it."""
        if path in self.sealed:
            self.sealed.remove(path)
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """At exit, everything converted: the lock file goes too (else it stays for the next
        recovery, with whatever segments are left)."""
        self.seal()
        if self._lock_fd is not None and not self.sealed:
            (self.directory / f"{self.writer}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _open(self) -> None:
        _private_dir(self.directory)
        if self._lock_fd is None:
            self._lock_fd = _locked(self.directory / f"{self.writer}.lock")
        self._number += 1
        path = self.directory / f"{self.writer}-{self._number:06d}{JOURNAL_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(path, flags, JOURNAL_FILE_MODE)
        self._path, self._size, self.customers = path, 0, 0
        self._opened_at = time.monotonic()

    def _cut(self) -> None:
        """After a failed write: drop any part of the entry that reached the file and seal
        the segment, so whatever follows starts a fresh one."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # reading stops at a partial last entry anyway
        self.seal()


def _locked(path: Path) -> int:
    """A writer's lock file, created and locked for as long as the writer runs."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, JOURNAL_FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:  # not removed by a recovery between creation and lock
            return fd
        os.close(fd)


def recover_journal(settings: Settings) -> int:
    """Turn the journal segments of writers that are gone (killed, crashed) into Parquet
    and delete them; returns how many customers they held.

    A writer whose lock file is still locked is running (another worker, or this
    process): its segments are its own. Run when a server starts and before the weekly
    job reads.
    """
    directory = journal_dir(settings)
    if not directory.is_dir():
        return 0
    segments: dict[str, list[Path]] = {}
    for path in sorted(directory.glob(f"*{JOURNAL_SUFFIX}")):
        segments.setdefault(path.stem.rsplit("-", 1)[0], []).append(path)
    writers = {p.stem for p in directory.glob("*.lock")} | set(segments)
    recovered = 0
    for writer in sorted(writers):
        lock = directory / f"{writer}.lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, JOURNAL_FILE_MODE)
        except OSError as err:
            log.warning("could not check monitoring journal writer %s (%s)", writer, err)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not os.fstat(fd).st_nlink:  # another process recovered it first
                continue
            left = 0
            for path in sorted(directory.glob(f"{writer}-*{JOURNAL_SUFFIX}")):
                if path.stem.rsplit("-", 1)[0] != writer:
                    continue
                try:
                    customers = convert_segment(settings, path)
                except Exception as err:  # a full disk: the segment stays for the next attempt
                    log.warning("could not recover %s (%s): left for the next attempt", path.name, err)
                    left += 1
                    continue
                path.unlink()
                recovered += customers
                log.warning(
                    "recovered %d scored customers from %s, left by a writer that stopped "
                    "before writing them",
                    customers,
                    path.name,
                )
            if not left:
                lock.unlink(missing_ok=True)
        except BlockingIOError:  # its writer is running
            continue
        finally:
            os.close(fd)
    return recovered
