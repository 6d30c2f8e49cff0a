"""File I/O every stage shares: atomic writes, their stale temporary files, file locks and
month arithmetic.

An atomic write goes to a hidden temporary file beside its target
(``.<name>.<pid>.<random>.tmp``, created 0600 by ``mkstemp``) and is renamed over the
target, so readers never see half a file and the files holding phone numbers stay
readable by their owner only. A writer that is killed (``kill -9``, a power cut) leaves
its temporary file behind; ``remove_stale_temporaries`` deletes those at the start of the
next run.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: A temporary file untouched for this long (seconds) is abandoned, whoever wrote it: a
#: live writer touches its file all along, and no single file takes an hour to write.
STALE_TEMP_SECONDS = 3600
#: A temporary file whose writer (the pid in its name) no longer runs on this machine is
#: abandoned once untouched for this long: a minute covers a writer on another machine
#: sharing the directory that happens to carry a pid unknown here.
DEAD_WRITER_SECONDS = 60
#: Suffixes of the hidden temporary files the project's writers leave (``.tmp`` from these
#: atomic writes, ``.ingest`` from ingest's copies).
TEMP_SUFFIXES = (".tmp", ".ingest")
_WRITER_PID = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def month_list(start: str, months: int) -> list[str]:
    """``months`` consecutive months from ``start`` ("YYYY-MM"), as "YYYY-MM" strings."""
    return [str(p) for p in pd.period_range(start=start, periods=months, freq="M")]


def snapshot_time(month: str) -> pd.Timestamp:
    """The instant a month's indicators describe: the last second of the month, UTC."""
    return (pd.Period(month, "M").end_time.floor("s")).tz_localize("UTC")


def _temporary(path: Path) -> tuple[int, str]:
    """A new hidden temporary file beside ``path``, mode 0600, named with this process's pid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)


@contextmanager
def _replacing(path: Path) -> Iterator[tuple[int, str]]:
    """A new temporary beside ``path`` (``_temporary``'s descriptor and name) for the block to
    write; renamed over ``path`` when the block ends, removed if it raises: every atomic write."""
    fd, tmp = _temporary(Path(path))
    try:
        yield fd, tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(frame: pd.DataFrame | pa.Table, path: Path, **write_options) -> None:
    """Write to a temporary file beside ``path`` and rename: readers never see half a file.

    The file is 0600 (``mkstemp``'s mode, which pyarrow keeps): these files hold phone
    numbers. ``write_options`` go to ``pyarrow.parquet.write_table`` (e.g. ``use_dictionary``).
    """
    with _replacing(path) as (fd, tmp):
        os.close(fd)
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, tmp, **write_options)


def atomic_write_arrow(batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path) -> None:
    """Record batches as an Arrow IPC file (random access: a reader can take one batch, as
    ``pa.ipc.open_file(...).get_batch(i)``), written beside ``path`` and renamed into place."""
    with _replacing(path) as (fd, tmp):
        os.close(fd)
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)


class AtomicTableFiles:
    """Parquet and CSV files written part by part (each ``write`` adds row groups, or rows to
    a ``.csv`` target) and published together: every file grows in a hidden temporary beside
    its target and ``commit`` renames them all, so a reader sees a whole file or the one
    before. Used as a context manager, an error (or a kill) leaves no target touched and the
    temporaries are removed (or, after a kill, left to ``remove_stale_temporaries``). Memory:
    one part, whatever the file's size.

    A file's first part fixes its schema (dictionary columns with 32-bit indices, so any later
    part's dictionary fits); later parts are cast to it."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[pq.ParquetWriter | pacsv.CSVWriter, pa.Schema, str]] = {}

    def write(self, table: pa.Table, path: Path) -> None:
        path = Path(path)
        if path not in self._files:
            fields = [
                pa.field(f.name, pa.dictionary(pa.int32(), f.type.value_type), f.nullable, f.metadata)
                if pa.types.is_dictionary(f.type)
                else f
                for f in table.schema
            ]
            schema = pa.schema(fields, metadata=table.schema.metadata)
            fd, tmp = _temporary(path)
            os.close(fd)
            writer = pacsv.CSVWriter if path.suffix == ".csv" else pq.ParquetWriter
            self._files[path] = (writer(tmp, schema), schema, tmp)
        writer, schema, _ = self._files[path]
        writer.write_table(table.cast(schema))

    def __contains__(self, path: Path) -> bool:
        """Whether ``path`` has had a part written since the last commit."""
        return Path(path) in self._files

    def commit(self) -> None:
        """Close every file and rename it over its target."""
        for writer, _, _ in self._files.values():
            writer.close()
        for path, (_, _, tmp) in self._files.items():
            os.replace(tmp, path)
        self._files.clear()

    def discard(self) -> None:
        """Close and delete every temporary; no target is touched."""
        for writer, _, tmp in self._files.values():
            with suppress(Exception):  # discarding after an error: that error is the one to report
                writer.close()
            Path(tmp).unlink(missing_ok=True)
        self._files.clear()

    def __enter__(self) -> AtomicTableFiles:
        return self

    def __exit__(self, kind, *_exc) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write bytes atomically (a file made elsewhere, e.g. on a Spark executor); 0600."""
    with _replacing(path) as (fd, _), os.fdopen(fd, "wb") as fh:
        fh.write(data)


def atomic_write_text(text: str, path: Path, mode: int | None = None) -> None:
    """Write UTF-8 text atomically. The file keeps ``mkstemp``'s 0600 (API keys, configuration)
    unless ``mode`` says otherwise (reports others read: 0o644)."""
    with _replacing(path) as (fd, tmp):
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if mode is not None:
            os.chmod(tmp, mode)


@contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its folder, if missing) for the
    block; yields False at once, holding nothing, when ``wait`` is off and another process holds
    it. The kernel releases the lock when its holder exits, killed or not: no stale lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _writer_gone(name: str) -> bool:
    """Whether the name carries a writer's pid and no process of that pid runs here."""
    found = _WRITER_PID.match(name)
    if not found:
        return False
    return process_gone(int(found.group(1)))


def process_gone(pid: int) -> bool:
    """Whether no process of ``pid`` runs on this machine (this process is never gone; another
    user's process, or a number no pid can be, is not known to be gone)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OverflowError, OSError):  # another user's process (PermissionError), or no pid at all
        return False
    return False


def remove_stale_temporaries(
    directories: Iterable[Path],
    older_than: float = STALE_TEMP_SECONDS,
    dead_writer_after: float = DEAD_WRITER_SECONDS,
) -> list[Path]:
    """Delete the temporary files killed writers left under ``directories``; returns them.

    Only hidden files ending in ``TEMP_SUFFIXES`` are candidates, and only when untouched
    for ``older_than`` seconds, or for ``dead_writer_after`` seconds when the pid in their
    name is no longer running. Symbolic links are neither followed nor removed; a file
    another process removes first is skipped.
    """
    now = time.time()
    removed: list[Path] = []
    for directory in directories:
        if not Path(directory).is_dir():
            continue
        for root, _dirs, files in os.walk(directory):
            for name in files:
                if not (name.startswith(".") and name.endswith(TEMP_SUFFIXES)):
                    continue
                path = Path(root) / name
                try:
                    info = path.lstat()
                    if not stat.S_ISREG(info.st_mode):  # a symbolic link or anything but a file
                        continue
                    age = now - info.st_mtime
                    if age >= older_than or (age >= dead_writer_after and _writer_gone(name)):
                        path.unlink()
                        removed.append(path)
                except OSError:  # removed by another process first, or not ours to remove
                    continue
    return removed
