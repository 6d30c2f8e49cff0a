"""The data-quality gate: completeness, accuracy, timeliness and authenticity of raw data.

The four dimensions are those of the business documents:

* completeness — every declared column is there, required values are filled, empty
  shares stay under their tolerance, no partition is missing or empty;
* accuracy — values have the declared type, codes and ranges, keys are unique, phone
  numbers have 11 digits;
* timeliness — every row of a monthly partition belongs to that month, and every
  province has every month of every monthly table;
* authenticity — the tables agree with each other: usage and bills belong to known
  subscribers, closed lines are not billed, refunds go with a complaint.

A problem is either ``reject`` (the data must not be published) or ``warn`` (reported,
published anyway). The per-frame checks (``check_frame``) are pure functions of a
DataFrame; ``check_partition`` and ``check_raw`` add the reading of files. One column's
checks are ``features.values``'s, those across partitions and tables ``features.consistency``'s,
finding partitions ``features.partitions``'s, publishing them ``features.ingest``'s.
All checks are vectorised: a million-row partition checks in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from core.errors import DataQualityError
from core.indicators import CATALOGUE
from core.msisdn import MSISDN_REGEX
from features.consistency import CrossTableChecks, layout_problems, missing_partitions
from features.partitions import Partition, discover, partition_of
from features.schemas import TABLES, Table
from features.values import (
    DIMENSIONS,
    REJECT,
    WARN,
    Collector,
    Problem,
    Values,
    as_object,
    check_values,
    coerce,
    examples,
    show,
    str_matches,
)

#: Tables with a row for every line (every open line, each month): an empty partition means
#: a lost feed. Event tables and the red/black lists are legitimately empty in a small
#: province-month (a month without refunds), so for them an empty partition is only a warning.
ROWS_REQUIRED = frozenset({"subscribers", "monthly_bills", "payments", "usage"})


@dataclass
class QualityReport:
    """What the gate found: the problems and a per-table summary."""

    problems: list[Problem] = field(default_factory=list)
    #: table -> {"files", "rows", "null_share": {column: share}, "problems": {dimension: n},
    #: "rejects", "warnings"}
    per_table: dict[str, dict] = field(default_factory=dict)
    root: str = ""
    files: list[str] = field(default_factory=list)
    checked_at: str = field(default_factory=lambda: pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"))
    #: the partitions checked, as found (not in ``to_dict``): ingest publishes exactly these
    partitions: list[Partition] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        """True when nothing is rejected (warnings allowed)."""
        return not any(p.severity == REJECT for p in self.problems)

    @property
    def rejects(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == REJECT]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARN]

    def raise_if_rejected(self) -> None:
        """Raise DataQualityError listing the reject-level problems, if there are any."""
        if not self.passed:
            rejects: list[object] = list(self.rejects)
            raise DataQualityError(rejects)

    def to_dict(self) -> dict:
        """A JSON-ready view of the report."""
        return {
            "root": self.root,
            "checked_at": self.checked_at,
            "passed": self.passed,
            "rejects": len(self.rejects),
            "warnings": len(self.warnings),
            "files_checked": len(self.files),
            "per_table": self.per_table,
            "problems": [p.to_dict() for p in self.problems],
        }


# --------------------------------------------------------------------------- frames


@dataclass
class _Checked:
    problems: list[Problem]
    rows: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    #: canonical values of the columns that have their declared type
    values: dict[str, Values] = field(default_factory=dict)
    raw: pd.DataFrame | None = None


def _table(table_name: str) -> Table:
    try:
        return TABLES[table_name]
    except KeyError:
        raise ValueError(f"unknown table {table_name!r}; declared: {sorted(TABLES)}") from None


def _check_frame(
    frame: pd.DataFrame, table: Table, label: str, month: str | None = None, province: str | None = None
) -> _Checked:
    out = Collector(label, table.name, province, month if table.monthly else None)
    frame = frame.reset_index(drop=True)
    n = len(frame)
    declared = table.column_names
    dup_cols = frame.columns[frame.columns.duplicated()].unique().tolist()
    for c in dup_cols:
        out.add("accuracy", REJECT, "column appears more than once", str(c))
    for c in declared:
        if c not in frame.columns:
            out.add("completeness", REJECT, f"missing column (declared for {table.name}: {declared})", c)
    for c in frame.columns:
        if c not in declared and c not in dup_cols:
            out.add("accuracy", WARN, f"unexpected column, not in the {table.name} schema; ignored", str(c))
    if n == 0:
        severity = REJECT if table.name in ROWS_REQUIRED else WARN
        tolerated = f" (tolerated: {table.name} can be empty in a small province; check the feed)"
        out.add("completeness", severity, "no rows" + ("" if severity == REJECT else tolerated))
        return _Checked(out.problems, 0)

    checked = _Checked(out.problems, n, raw=frame)
    for col in table.columns:
        if col.name not in frame.columns or col.name in dup_cols:
            continue
        s = frame[col.name]
        v = coerce(s, col.kind)
        checked.nulls[col.name] = int(v.null.sum())
        if check_values(
            out,
            s,
            v,
            name=col.name,
            kind=col.kind,
            nullable=col.nullable,
            max_null_share=col.max_null_share,
            codes=col.codes,
            valid_range=col.valid_range,
        ):
            checked.values[col.name] = v

    values = checked.values
    if "msisdn" in values:
        s, v = frame["msisdn"], values["msisdn"]
        bad = ~str_matches(s, f"^{MSISDN_REGEX}$") & ~v.null
        if bad.any():
            out.add(
                "accuracy",
                REJECT,
                f"{int(bad.sum())} phone number(s) not 11 digits, e.g. {examples(s, bad)}",
                "msisdn",
                bad,
            )

    if all(k in values for k in table.key):
        keys = pd.DataFrame(
            {k: (values[k].values if table.column(k).kind != "str" else frame[k]) for k in table.key}
        )
        dup = keys.duplicated(keep=False).to_numpy()
        if dup.any():
            first = np.flatnonzero(dup)[0]
            example = ", ".join(show(frame[k].iloc[first]) for k in table.key)
            out.add(
                "accuracy",
                REJECT,
                f"{int(dup.sum())} rows share their key ({', '.join(table.key)}) "
                f"with another row, e.g. ({example})",
                ", ".join(table.key),
                dup,
            )

    if table.monthly and month and table.time_column in values:
        tc = table.time_column
        v = values[tc]
        if table.column(tc).kind == "str":
            bad = (as_object(frame[tc]) != month).to_numpy(dtype=bool) & ~v.null
        else:
            start = pd.Timestamp(f"{month}-01")
            end = start + pd.offsets.MonthBegin(1)
            t = pd.Series(v.values)
            bad = ((t < start) | (t >= end)).to_numpy(dtype=bool) & ~v.null
        if bad.any():
            out.add(
                "timeliness",
                REJECT,
                f"{int(bad.sum())} row(s) dated outside the partition's month "
                f"{month}, e.g. {examples(frame[tc], bad)}",
                tc,
                bad,
            )

    if table.name == "subscribers":
        _check_subscriber_rows(out, frame, values, province)
    return checked


def _check_subscriber_rows(
    out: Collector, frame: pd.DataFrame, values: dict[str, Values], province: str | None
) -> None:
    if province and "province" in values:
        bad = (as_object(frame["province"]) != province).to_numpy(dtype=bool) & ~values["province"].null
        if bad.any():
            out.add(
                "accuracy",
                REJECT,
                f"{int(bad.sum())} subscriber(s) of another province in the "
                f"province={province} partition, e.g. {examples(frame['province'], bad)}",
                "province",
                bad,
            )
    if "status" in values and "close_date" in values:
        closed = (as_object(frame["status"]) == "closed").to_numpy(dtype=bool)
        has_date = ~values["close_date"].null
        for mask, what in (
            (closed & ~has_date, "status 'closed' without a close_date"),
            (~closed & has_date, "a close_date on a line whose status is not 'closed'"),
        ):
            if mask.any():
                out.add("accuracy", WARN, f"{int(mask.sum())} row(s) with {what}", "close_date", mask)


def check_frame(
    frame: pd.DataFrame,
    table_name: str,
    file_label: str,
    month: str | None = None,
    *,
    province: str | None = None,
) -> list[Problem]:
    """Check one partition's rows against the declared schema of ``table_name``.

    ``file_label`` names the file (``Problem.file``, and the messages unless ``province`` is
    given: then they name the table and partition). ``month`` ("YYYY-MM"), for monthly
    tables, turns on the timeliness check of the time column; ``province`` checks the
    subscribers' province column. Pure: reads and writes nothing.
    """
    return _check_frame(frame, _table(table_name), file_label, month, province).problems


# --------------------------------------------------------------------------- files


def _read(path: Path) -> tuple[pd.DataFrame | None, str]:
    """Read a Parquet or CSV partition: (frame, "") or (None, why it is unusable)."""
    try:
        size = path.stat().st_size
    except OSError as err:
        return None, f"cannot read the file ({err.strerror or err})"
    if size == 0:
        return None, "empty file (0 bytes)"
    try:
        if path.suffix.lower() == ".csv":
            # Everything as text: the schema decides the types, leniently (see coerce).
            return pd.read_csv(path, dtype=str, keep_default_na=True), ""
        return pq.read_table(path).to_pandas(date_as_object=False), ""
    except Exception as err:  # noqa: BLE001 - any reader failure means the file is unusable
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        return None, f"unreadable or truncated {kind} file ({size} bytes): {type(err).__name__}: {err}"


def _check_file(path: Path, table: Table, label: str, month: str | None, province: str | None) -> _Checked:
    frame, error = _read(path)
    if frame is None:
        out = Collector(label, table.name, province, month if table.monthly else None)
        out.add("completeness", REJECT, error)
        return _Checked(out.problems)
    return _check_frame(frame, table, label, month, province)


def check_partition(path: str | Path, table_name: str, *, label: str | None = None) -> list[Problem]:
    """Check one partition file (Parquet, or CSV if its suffix is .csv) of ``table_name``.

    For monthly tables the month comes from the ``month=YYYY-MM`` folder of the path (no
    such folder: no timeliness check); ``label`` (default: the path) names the file.
    """
    province, month = partition_of(path)
    return _check_file(Path(path), _table(table_name), label or str(path), month, province).problems


# --------------------------------------------------------------------------- raw folders


class _Summary:
    """Per-table rows, files and empty values, accumulated over partitions."""

    def __init__(self):
        self.tables: dict[str, dict] = {}

    def add(self, table: str, checked: _Checked) -> None:
        t = self.tables.setdefault(table, {"files": 0, "rows": 0, "nulls": {}})
        t["files"] += 1
        t["rows"] += checked.rows
        for col, k in checked.nulls.items():
            t["nulls"][col] = t["nulls"].get(col, 0) + k

    def result(self, problems: list[Problem]) -> dict[str, dict]:
        out = {}
        for name in TABLES:
            t = self.tables.get(name, {"files": 0, "rows": 0, "nulls": {}})
            mine = [p for p in problems if p.table == name]
            if not t["files"] and not mine:
                continue
            out[name] = {
                "files": t["files"],
                "rows": t["rows"],
                "null_share": {
                    c: round(k / t["rows"], 6) if t["rows"] else None for c, k in t["nulls"].items()
                },
                "problems": {d: sum(p.dimension == d for p in mine) for d in DIMENSIONS},
                "rejects": sum(p.severity == REJECT for p in mine),
                "warnings": sum(p.severity == WARN for p in mine),
            }
        return out


def check_raw(
    raw_dir: str | Path, provinces=None, months=None, *, reference_dir: str | Path | None = None
) -> QualityReport:
    """Check every partition under ``raw_dir`` on all four dimensions.

    ``provinces`` / ``months`` restrict the check; given months are also the months every
    monthly table must have (default: each province's months from its first to its last
    seen in any table, so a gap month counts as missing). ``reference_dir`` (used by
    ``ingest``) is the already published raw folder: partitions absent from ``raw_dir``
    but present there do not count as missing, and its subscribers and complaints serve
    the cross-table checks when ``raw_dir`` has none. The partitions checked are in the
    report's ``partitions``.
    """
    root = Path(raw_dir)
    reference = Path(reference_dir) if reference_dir is not None else None
    report = QualityReport(root=str(root))
    problems = report.problems
    if not root.is_dir():
        problems.append(Problem("completeness", REJECT, str(root), "", None, [], "folder does not exist"))
        return report
    parts, layout = discover(root)
    problems.extend(layout_problems(layout))
    ref_parts = discover(reference)[0] if reference is not None and reference.is_dir() else []
    wanted_provinces = set(provinces) if provinces else None
    wanted_months = sorted(set(months)) if months else None

    def keep(p: Partition) -> bool:
        return (wanted_provinces is None or p.province in wanted_provinces) and (
            wanted_months is None or p.month is None or p.month in wanted_months
        )

    parts = [p for p in parts if keep(p)]
    ref_parts = [p for p in ref_parts if keep(p)]
    if not parts and not wanted_provinces:
        problems.append(
            Problem(
                "completeness", REJECT, str(root), "", None, [], "no partitions of any declared table found"
            )
        )
    summary = _Summary()
    table_order = {name: i for i, name in enumerate(TABLES)}
    for province in sorted({p.province for p in parts} | (wanted_provinces or set())):
        mine = {(p.table, p.month): p for p in parts if p.province == province}
        theirs = {(p.table, p.month): p for p in ref_parts if p.province == province}
        problems.extend(missing_partitions(root, province, mine, theirs, wanted_months))

        cross = CrossTableChecks(mine, theirs)
        # Subscribers first: the other tables are checked against them.
        for part in sorted(
            mine.values(), key=lambda p: (p.table != "subscribers", table_order[p.table], p.month or "")
        ):
            checked = _check_file(part.path, TABLES[part.table], part.label, part.month, province)
            report.files.append(part.label)
            summary.add(part.table, checked)
            problems.extend(checked.problems)
            if checked.raw is not None:
                problems.extend(cross.add(part, checked.values, checked.raw))
        problems.extend(cross.finish())

    # Rejects first, so that the first lines of any listing are the ones that block.
    problems.sort(key=lambda p: p.severity != REJECT)
    report.per_table = summary.result(problems)
    report.partitions = parts
    return report


# --------------------------------------------------------------------------- indicators


def check_indicators(frame: pd.DataFrame, label: str = "indicators", indicators=None) -> list[Problem]:
    """Completeness and accuracy of an indicator frame (one column per catalogue indicator).

    Rejects: a missing indicator column, empty values in a non-nullable indicator, values of
    the wrong type, outside the valid range or outside the codes. ``label`` names the
    frame in the messages; rows are positions in ``frame``. ``indicators`` checks only
    those (a province's custom ones, or the columns a data mapping provides).
    """
    problems: list[Problem] = []
    frame = frame.reset_index(drop=True)
    for ind in CATALOGUE if indicators is None else indicators:
        out = Collector(label, ind.subject)
        if ind.id not in frame.columns:
            out.add("completeness", REJECT, "indicator missing from the frame", ind.id)
        else:
            kind = "str" if ind.kind == "category" else ind.kind
            s = frame[ind.id]
            check_values(
                out,
                s,
                coerce(s, kind),
                name=ind.id,
                kind=kind,
                nullable=ind.nullable,
                max_null_share=1.0,
                codes=ind.codes,
                valid_range=ind.valid_range,
            )
        problems.extend(out.problems)
    return problems


def per_indicator(frame: pd.DataFrame) -> dict[str, dict]:
    """Per indicator: null share, min, max and mean (category indicators: code shares instead).

    JSON-ready; an indicator the frame lacks has ``present: False``.
    """
    summary: dict[str, dict] = {}
    n = len(frame)
    for ind in CATALOGUE:
        if ind.id not in frame.columns:
            summary[ind.id] = {"present": False}
            continue
        s = frame[ind.id].reset_index(drop=True)
        v = coerce(s, "str" if ind.kind == "category" else ind.kind)
        entry: dict = {"present": True, "null_share": round(float(v.null.mean()), 6) if n else None}
        if ind.kind == "category":
            shares = as_object(s)[~v.null].value_counts(normalize=True)
            entry["codes"] = {str(k): round(float(x), 6) for k, x in shares.items()}
        else:
            vals = np.asarray(v.values, dtype="float64")[~v.null & ~v.bad]
            entry.update(
                {
                    "min": float(vals.min()) if len(vals) else None,
                    "max": float(vals.max()) if len(vals) else None,
                    "mean": float(vals.mean()) if len(vals) else None,
                }
            )
        summary[ind.id] = entry
    return summary


__all__ = [
    "DIMENSIONS",
    "Problem",
    "QualityReport",
    "check_frame",
    "check_partition",
    "check_raw",
    "check_indicators",
    "per_indicator",
    "coerce",
    "Values",
    "REJECT",
    "WARN",
]
