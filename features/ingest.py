"""Publishing raw partitions into raw/: all of a delivery is checked first, then each file is
replaced atomically, so a published partition is always either its old or its new content.

The checks are the quality gate's (``features.quality.check_raw``) and the layout is
``features.partitions``'s; this module only stages, converts (CSV to Parquet) and renames.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import DataQualityError
from features.partitions import file_stamp
from features.quality import REJECT, Problem, QualityReport, check_raw, coerce
from features.schemas import TABLES, Table, partition_path


def _csv_as_parquet(source: Path, table: Table, target: Path) -> None:
    """Write an accepted CSV partition as Parquet with the declared column types."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=True)
    arrays = []
    for col in table.columns:
        v = coerce(frame[col.name], col.kind)
        if col.kind == "str":
            arr = pa.array(
                frame[col.name].where(~v.null, None).to_numpy(dtype=object),
                type=pa.string(),
                from_pandas=True,
            )
        elif col.kind in ("int", "float"):
            vals = pd.array(np.asarray(v.values, dtype="float64"))
            arr = (
                pa.array(vals.astype("Int64"), type=pa.int64())
                if col.kind == "int"
                else pa.array(vals, type=pa.float64())
            )
        elif col.kind == "bool":
            arr = pa.array(pd.Series(v.values).astype("boolean"), type=pa.bool_())
        else:
            ts = pa.array(pd.Series(v.values).astype("datetime64[ns]"), type=pa.timestamp("ns"))
            arr = pc.cast(ts, pa.date32(), safe=False) if col.kind == "date" else ts
        arrays.append(arr)
    pq.write_table(pa.Table.from_arrays(arrays, names=table.column_names), target)


def ingest(
    source_dir: str | Path,
    raw_dir: str | Path,
    before_publish: Callable[[list[tuple[str, str, str | None]]], object] | None = None,
) -> QualityReport:
    """Check every partition under ``source_dir`` (laid out like raw/) and publish them.

    All of the source is checked first (``check_raw`` against the published ``raw_dir``);
    any reject raises DataQualityError and nothing is written. Otherwise every source
    partition is copied next to its destination under a hidden temporary name, and only
    when all copies are complete are they renamed over the destinations (``os.replace``),
    so a destination is always either its previous or its new content. Files not in the
    source stay untouched; CSV partitions are stored as Parquet. ``before_publish`` is called
    with the partitions (table, province, month or None) once all are staged, before the first
    rename. Returns the report (the caller writes it).
    """
    raw_dir = Path(raw_dir)
    report = check_raw(source_dir, reference_dir=raw_dir)
    report.raise_if_rejected()
    staged: list[tuple[Path, Path]] = []
    try:
        for part in report.partitions:
            dest = partition_path(raw_dir, part.table, part.province, part.month)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".ingest", dir=dest.parent)
            os.close(fd)
            tmp = Path(name)
            staged.append((tmp, dest))
            if part.path.suffix.lower() == ".csv":
                _csv_as_parquet(part.path, TABLES[part.table], tmp)
            else:
                shutil.copyfile(part.path, tmp)
            # On disk before the rename, so a crash cannot leave a short file under the real name.
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            if file_stamp(part.path) != part.stamp:
                raise DataQualityError(
                    [
                        Problem(
                            "authenticity",
                            REJECT,
                            part.label,
                            part.table,
                            None,
                            [],
                            "file changed while it was being ingested; try again",
                            province=part.province,
                            month=part.month,
                        )
                    ]
                )
        if before_publish is not None:
            before_publish([(p.table, p.province, p.month) for p in report.partitions])
        for staged_file, dest in staged:
            os.replace(staged_file, dest)
    finally:
        for staged_file, _ in staged:  # after a failure: the temporaries not yet renamed
            staged_file.unlink(missing_ok=True)
    return report


__all__ = ["ingest"]
