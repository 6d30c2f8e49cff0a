"""File I/O every stage shares: atomic writes and month arithmetic."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def month_list(start: str, months: int) -> list[str]:
    """``months`` consecutive months from ``start`` ("YYYY-MM"), as "YYYY-MM" strings."""
    return [str(p) for p in pd.period_range(start=start, periods=months, freq="M")]


def snapshot_time(month: str) -> pd.Timestamp:
    """The instant a month's indicators describe: the last second of the month, UTC."""
    return (pd.Period(month, "M").end_time.floor("s")).tz_localize("UTC")


def atomic_write_parquet(frame: pd.DataFrame | pa.Table, path: Path, **write_options) -> None:
    """Write to a temporary file beside ``path`` and rename: readers never see half a file.

    ``write_options`` go to ``pyarrow.parquet.write_table`` (e.g. ``use_dictionary``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, tmp, **write_options)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: Path, mode: int | None = None) -> None:
    """Write UTF-8 text atomically. The file keeps ``mkstemp``'s 0600 (API keys, configuration)
    unless ``mode`` says otherwise (reports others read: 0o644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)
