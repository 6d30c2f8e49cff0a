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
DataFrame; ``check_partition``, ``check_raw`` and ``ingest`` add the file handling.
All checks are vectorised: a million-row partition checks in about a second.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.indicators import CATALOGUE
from features.schemas import PROVINCE_CODES, TABLES, Table, partition_path
from core.errors import DataQualityError
from core.msisdn import MSISDN_REGEX

DIMENSIONS = ("completeness", "accuracy", "timeliness", "authenticity")
REJECT, WARN = "reject", "warn"
#: Example rows kept per problem.
MAX_ROWS = 10
#: Tables with a row for every line (every open line, each month): an empty partition means
#: a lost feed. Event tables and the red/black lists are legitimately empty in a small
#: province-month (a month without refunds), so for them an empty partition is only a warning.
ROWS_REQUIRED = frozenset({"subscribers", "monthly_bills", "payments", "usage"})
#: Activity that only a known subscriber of the same province can have.
SUBSCRIBER_ACTIVITY = ("monthly_bills", "payments", "usage")
#: Activity a line cannot have after the month it closed, and what the report calls it.
CLOSED_LINE_ACTIVITY = {"monthly_bills": "bills", "usage": "usage"}
PARTITION_FILES = ("part-0.parquet", "part-0.csv")

_PROVINCE_DIR = re.compile(r"^province=([A-Z]{2})$")
_MONTH_DIR = re.compile(r"^month=(\d{4}-(?:0[1-9]|1[0-2]))$")
_MONTH_IN_PATH = re.compile(r"(?:^|/)month=(\d{4}-(?:0[1-9]|1[0-2]))(?:/|$)")
_PROVINCE_IN_PATH = re.compile(r"(?:^|/)province=([A-Z]{2})(?:/|$)")
_BOOL_WORDS = {"true": True, "false": False, "t": True, "f": False, "1": True, "0": False,
               "1.0": True, "0.0": False, "yes": True, "no": False, "y": True, "n": False}


@dataclass
class Problem:
    """One finding of the gate, naming the file, column and example rows (0-based file rows)."""

    dimension: str  # one of DIMENSIONS
    severity: str  # "reject" | "warn"
    file: str
    table: str
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    message: str = ""

    def __str__(self) -> str:
        text = self.file
        if self.column:
            text += f": {'columns' if ',' in self.column else 'column'} {self.column}"
            if self.rows:
                text += f" rows {self.rows}"
        elif self.rows:
            text += f": rows {self.rows}"
        return f"{text}: {self.message} ({self.dimension})"

    def to_dict(self) -> dict:
        return {**asdict(self), "text": str(self)}


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


# --------------------------------------------------------------------------- values


@dataclass
class _Values:
    """One column in canonical form: the values, which rows are empty, which don't fit the kind."""

    values: pd.Series | np.ndarray  # str: as stored; int/float: float64; bool: boolean; time: datetime64
    null: np.ndarray
    bad: np.ndarray  # non-empty values that are not of the declared kind
    stored_as: str


def _is_textual(dtype) -> bool:
    return (pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(dtype))


def _null_mask(s: pd.Series) -> np.ndarray:
    null = s.isna().to_numpy(dtype=bool)
    if _is_textual(s.dtype) and len(s):
        # An empty string is a missing value as far as completeness is concerned.
        null |= pd.array(s == "", dtype="boolean").to_numpy(dtype=bool, na_value=False)
    return null


def _as_object(s: pd.Series) -> pd.Series:
    return s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s


def _coerce(s: pd.Series, kind: str) -> _Values:
    """Bring one column to its declared kind, leniently: ints stored as whole floats, bools
    as 0/1 or words, timestamps and dates as parseable strings, text as categories."""
    dtype = s.dtype
    stored_as = (f"category of {dtype.categories.dtype}" if isinstance(dtype, pd.CategoricalDtype)
                 else str(dtype))
    null = _null_mask(s)
    n = len(s)
    nothing = np.zeros(n, dtype=bool)
    if null.all():  # an all-empty column fits any kind; completeness judges it
        empty = pd.Series(np.full(n, np.nan)) if kind in ("int", "float") else s
        if kind in ("timestamp", "date"):
            empty = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
        return _Values(empty, null, nothing, stored_as)
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    temporal = pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)

    if kind == "str":
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            if pd.api.types.infer_dtype(cats, skipna=True) in ("string", "empty"):
                return _Values(s, null, nothing, stored_as)
            cat_bad = np.array([not isinstance(c, str) for c in cats], dtype=bool)
            codes = s.cat.codes.to_numpy()
            return _Values(s, null, (codes >= 0) & cat_bad[np.maximum(codes, 0)], stored_as)
        if pd.api.types.is_object_dtype(dtype):
            if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
                return _Values(s, null, nothing, stored_as)
            is_str = s.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)  # only on bad columns
            return _Values(s, null, ~null & ~is_str, stored_as)
        if pd.api.types.is_string_dtype(dtype):
            return _Values(s, null, nothing, stored_as)
        return _Values(s, null, ~null, stored_as)

    if kind in ("int", "float"):
        if numeric:
            vals = s.to_numpy(dtype="float64", na_value=np.nan)
            bad = nothing.copy()
        elif _is_textual(dtype) and not pd.api.types.is_bool_dtype(dtype):
            vals = pd.to_numeric(_as_object(s), errors="coerce")
            vals = np.asarray(vals.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
            bad = ~null & np.isnan(vals)
        else:  # bools, timestamps where a number is declared
            vals, bad = np.full(n, np.nan), ~null
        if kind == "int":
            with np.errstate(invalid="ignore"):
                bad |= ~np.isnan(vals) & np.isfinite(vals) & (vals != np.floor(vals))
        vals = np.where(bad, np.nan, vals)
        return _Values(vals, null, bad, stored_as)

    if kind == "bool":
        if pd.api.types.is_bool_dtype(dtype):
            return _Values(s.astype("boolean"), null, nothing, stored_as)
        if numeric:
            arr = s.to_numpy(dtype="float64", na_value=np.nan)
            ok = (arr == 0) | (arr == 1)
            vals = pd.Series(pd.array(arr == 1, dtype="boolean")).where(ok, pd.NA)
            return _Values(vals, null, ~null & ~ok, stored_as)
        if _is_textual(dtype):
            words = s.astype("string").str.strip().str.lower().map(_BOOL_WORDS)
            ok = words.notna().to_numpy(dtype=bool)
            vals = pd.Series(pd.array(words.where(ok, None).tolist(), dtype="boolean"))
            return _Values(vals, null, ~null & ~ok, stored_as)
        return _Values(pd.Series(pd.NA, index=range(n), dtype="boolean"), null, ~null, stored_as)

    if kind in ("timestamp", "date"):
        if pd.api.types.is_datetime64_any_dtype(dtype):
            vals = s
            if getattr(dtype, "tz", None) is not None:
                vals = s.dt.tz_convert("UTC").dt.tz_localize(None)
            return _Values(vals.reset_index(drop=True), null, nothing, stored_as)
        if _is_textual(dtype) and not temporal:
            src = _as_object(s).reset_index(drop=True)
            vals = pd.to_datetime(src, errors="coerce", format="ISO8601", utc=True)
            failed = ~null & vals.isna().to_numpy()
            if failed.any():  # a slower, per-value parse only for what ISO 8601 could not read
                vals[failed] = pd.to_datetime(src[failed], errors="coerce", format="mixed", utc=True)
            vals = vals.dt.tz_localize(None)
            return _Values(vals, null, ~null & vals.isna().to_numpy(), stored_as)
        return _Values(pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]"), null, ~null, stored_as)

    raise ValueError(f"unknown column kind {kind!r}")


def _rows(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask)[:MAX_ROWS].tolist()


def _show(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, pd.Timestamp):
        return repr(str(value))
    return repr(value if isinstance(value, str) else str(value))


def _bound(b: float) -> str:
    return str(int(b)) if float(b).is_integer() else repr(float(b))


def _distinct(values, mask: np.ndarray, limit: int = 3) -> list[str]:
    """A few distinct example values from the rows in ``mask``, as shown in messages."""
    seen: list[str] = []
    for i in np.flatnonzero(mask)[: limit * 20]:
        shown = _show(values.iloc[i] if isinstance(values, pd.Series) else values[i])
        if shown not in seen:
            seen.append(shown)
        if len(seen) == limit:
            break
    return seen


def _examples(values, mask: np.ndarray, limit: int = 3) -> str:
    return ", ".join(_distinct(values, mask, limit))


def _offending(values, mask: np.ndarray) -> tuple[str, str]:
    """("value X" or "values X, Y", "; N rows in all" when the example rows don't list them all)."""
    shown = _distinct(values, mask)
    k = int(mask.sum())
    return (f"{'value' if len(shown) == 1 else 'values'} {', '.join(shown)}",
            f"; {k} rows in all" if k > MAX_ROWS else "")


def _str_matches(s: pd.Series, pattern: str) -> np.ndarray:
    """Which rows of a text column match a regular expression (nulls count as matching)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = pa.array(s.cat.categories.astype(object).to_numpy(), type=pa.string(), from_pandas=True)
        ok_cat = pc.fill_null(pc.match_substring_regex(cats, pattern), True).to_numpy(zero_copy_only=False)
        codes = s.cat.codes.to_numpy()
        return np.where(codes >= 0, ok_cat[np.maximum(codes, 0)], True)
    arr = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    return pc.fill_null(pc.match_substring_regex(arr, pattern), True).to_numpy(zero_copy_only=False)


def _not_in(s: pd.Series, allowed) -> np.ndarray:
    """Rows of a text column whose value is not one of ``allowed`` (nulls excluded)."""
    allowed = list(allowed)
    if isinstance(s.dtype, pd.CategoricalDtype):
        bad_cat = ~s.cat.categories.isin(allowed)
        codes = s.cat.codes.to_numpy()
        return (codes >= 0) & bad_cat[np.maximum(codes, 0)]
    return ~s.isin(allowed).to_numpy(dtype=bool) & s.notna().to_numpy(dtype=bool)


class _Collector:
    """Collects the problems of one file."""

    def __init__(self, label: str, table: str):
        self.label, self.table = label, table
        self.problems: list[Problem] = []

    def add(self, dimension: str, severity: str, message: str, column: str | None = None,
            mask: np.ndarray | None = None) -> None:
        rows = _rows(mask) if mask is not None else []
        self.problems.append(Problem(dimension, severity, self.label, self.table, column, rows, message))


def _check_values(out: _Collector, s: pd.Series, v: _Values, *, name: str, kind: str, nullable: bool,
                  max_null_share: float, codes, valid_range) -> bool:
    """Type, completeness, codes and range of one column; False if its type is wrong."""
    n = len(s)
    if v.bad.any():
        what, total = _offending(s, v.bad)
        out.add("accuracy", REJECT, f"{what} not of type {kind} (stored as {v.stored_as}){total}",
                name, v.bad)
        return False
    nulls = int(v.null.sum())
    if nulls and not nullable:
        out.add("completeness", REJECT, f"{nulls} empty value(s) in a required column", name, v.null)
    elif nullable and n and nulls / n > max_null_share:
        out.add("completeness", WARN, f"{nulls / n:.1%} empty ({nulls} of {n} rows), above the "
                f"tolerated {max_null_share:.1%}", name, v.null)
    if codes is not None:
        bad = _not_in(s, codes) & ~v.null
        if bad.any():
            what, total = _offending(s, bad)
            out.add("accuracy", REJECT, f"{what} not among the codes {list(codes)}{total}", name, bad)
    if valid_range is not None and kind in ("int", "float"):
        lo, hi = valid_range
        with np.errstate(invalid="ignore"):
            bad = (v.values < lo) | (v.values > hi)
        if bad.any():
            what, total = _offending(v.values, bad)
            out.add("accuracy", REJECT, f"{what} outside valid range [{_bound(lo)}, {_bound(hi)}]{total}",
                    name, bad)
    return True


# --------------------------------------------------------------------------- frames


@dataclass
class _Checked:
    problems: list[Problem]
    rows: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    #: canonical values of the columns that have their declared type
    values: dict[str, _Values] = field(default_factory=dict)
    raw: pd.DataFrame | None = None


def _table(table_name: str) -> Table:
    try:
        return TABLES[table_name]
    except KeyError:
        raise ValueError(f"unknown table {table_name!r}; declared: {sorted(TABLES)}") from None


def _check_frame(frame: pd.DataFrame, table: Table, label: str, month: str | None = None,
                 province: str | None = None) -> _Checked:
    out = _Collector(label, table.name)
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
        v = _coerce(s, col.kind)
        checked.nulls[col.name] = int(v.null.sum())
        if _check_values(out, s, v, name=col.name, kind=col.kind, nullable=col.nullable,
                         max_null_share=col.max_null_share, codes=col.codes, valid_range=col.valid_range):
            checked.values[col.name] = v

    values = checked.values
    if "msisdn" in values:
        s, v = frame["msisdn"], values["msisdn"]
        bad = ~_str_matches(s, f"^{MSISDN_REGEX}$") & ~v.null
        if bad.any():
            out.add("accuracy", REJECT, f"{int(bad.sum())} phone number(s) not 11 digits, e.g. "
                    f"{_examples(s, bad)}", "msisdn", bad)

    if all(k in values for k in table.key):
        keys = pd.DataFrame({k: (values[k].values if table.column(k).kind != "str" else frame[k])
                             for k in table.key})
        dup = keys.duplicated(keep=False).to_numpy()
        if dup.any():
            first = np.flatnonzero(dup)[0]
            example = ", ".join(_show(frame[k].iloc[first]) for k in table.key)
            out.add("accuracy", REJECT, f"{int(dup.sum())} rows share their key ({', '.join(table.key)}) "
                    f"with another row, e.g. ({example})", ", ".join(table.key), dup)

    if table.monthly and month and table.time_column in values:
        tc = table.time_column
        v = values[tc]
        if table.column(tc).kind == "str":
            bad = (_as_object(frame[tc]) != month).to_numpy(dtype=bool) & ~v.null
        else:
            start = pd.Timestamp(f"{month}-01")
            end = start + pd.offsets.MonthBegin(1)
            t = pd.Series(v.values)
            bad = ((t < start) | (t >= end)).to_numpy(dtype=bool) & ~v.null
        if bad.any():
            out.add("timeliness", REJECT, f"{int(bad.sum())} row(s) dated outside the partition's month "
                    f"{month}, e.g. {_examples(frame[tc], bad)}", tc, bad)

    if table.name == "subscribers":
        _check_subscriber_rows(out, frame, values, province)
    return checked


def _check_subscriber_rows(out: _Collector, frame: pd.DataFrame, values: dict[str, _Values],
                           province: str | None) -> None:
    if province and "province" in values:
        bad = (_as_object(frame["province"]) != province).to_numpy(dtype=bool) & ~values["province"].null
        if bad.any():
            out.add("accuracy", REJECT, f"{int(bad.sum())} subscriber(s) of another province in the "
                    f"province={province} partition, e.g. {_examples(frame['province'], bad)}", "province", bad)
    if "status" in values and "close_date" in values:
        closed = (_as_object(frame["status"]) == "closed").to_numpy(dtype=bool)
        has_date = ~values["close_date"].null
        for mask, what in ((closed & ~has_date, "status 'closed' without a close_date"),
                           (~closed & has_date, "a close_date on a line whose status is not 'closed'")):
            if mask.any():
                out.add("accuracy", WARN, f"{int(mask.sum())} row(s) with {what}", "close_date", mask)


def check_frame(frame: pd.DataFrame, table_name: str, file_label: str, month: str | None = None,
                *, province: str | None = None) -> list[Problem]:
    """Check one partition's rows against the declared schema of ``table_name``.

    ``file_label`` names the file in the messages. ``month`` ("YYYY-MM"), for monthly
    tables, turns on the timeliness check of the time column; ``province`` checks the
    subscribers' province column. Pure: reads and writes nothing.
    """
    return _check_frame(frame, _table(table_name), file_label, month, province).problems


# --------------------------------------------------------------------------- files


def _read(path: Path, table: Table, label: str) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read a Parquet or CSV partition; an unreadable one is a reject naming the file."""
    def fail(message: str):
        return None, [Problem("completeness", REJECT, label, table.name, None, [], message)]

    try:
        size = path.stat().st_size
    except OSError as err:
        return fail(f"cannot read the file ({err.strerror or err})")
    if size == 0:
        return fail("empty file (0 bytes)")
    try:
        if path.suffix.lower() == ".csv":
            # Everything as text: the schema decides the types, leniently (see _coerce).
            return pd.read_csv(path, dtype=str, keep_default_na=True), []
        return pq.read_table(path).to_pandas(date_as_object=False), []
    except Exception as err:  # noqa: BLE001 - any reader failure means the file is unusable
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        return fail(f"unreadable or truncated {kind} file ({size} bytes): {type(err).__name__}: {err}")


def _check_file(path: Path, table: Table, label: str, month: str | None, province: str | None) -> _Checked:
    frame, problems = _read(path, table, label)
    if frame is None:
        return _Checked(problems)
    return _check_frame(frame, table, label, month, province)


def check_partition(path: str | Path, table_name: str, *, label: str | None = None) -> list[Problem]:
    """Check one partition file (Parquet, or CSV if its suffix is .csv) of ``table_name``.

    For monthly tables the month comes from the ``month=YYYY-MM`` folder of the path (no
    such folder: no timeliness check); ``label`` (default: the path) names the file.
    """
    path = Path(path)
    posix = path.as_posix()
    month = _MONTH_IN_PATH.search(posix)
    province = _PROVINCE_IN_PATH.search(posix)
    return _check_file(path, _table(table_name), label or str(path),
                       month.group(1) if month else None, province.group(1) if province else None).problems


# --------------------------------------------------------------------------- raw folders


@dataclass(frozen=True)
class _Part:
    table: str
    province: str
    month: str | None
    path: Path
    label: str
    #: size and modification time when found: ingest copies only what was checked
    stamp: tuple[int, int] = (0, 0)


def _label(root: Path, path: Path) -> str:
    return f"{Path(os.path.abspath(root)).name}/{path.relative_to(root).as_posix()}"


def _discover(root: Path) -> tuple[list[_Part], list[Problem]]:
    """The partitions under ``root`` laid out like raw/, and problems with the layout."""
    parts: dict[tuple, _Part] = {}
    problems: list[Problem] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        # Hidden files are temporaries of atomic writes in progress, not data.
        if any(p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        label = _label(root, path)
        table = TABLES.get(rel.parts[0]) if len(rel.parts) > 1 else None
        if table is None:
            problems.append(Problem("completeness", WARN, label, "", None, [],
                                    "not under a declared table's folder; ignored"))
            continue
        expected = (f"{table.name}/province=XX/{'month=YYYY-MM/' if table.monthly else ''}part-0.parquet")
        depth = 4 if table.monthly else 3
        province = _PROVINCE_DIR.match(rel.parts[1]) if len(rel.parts) == depth else None
        month = _MONTH_DIR.match(rel.parts[2]) if province and table.monthly else None
        if province is None or (table.monthly and month is None) or rel.name not in PARTITION_FILES:
            problems.append(Problem("completeness", REJECT, label, table.name, None, [],
                                    f"not a partition: expected {expected} (or part-0.csv)"))
            continue
        code = province.group(1)
        if code not in PROVINCE_CODES:
            problems.append(Problem("accuracy", WARN, label, table.name, None, [],
                                    f"province {code} is not one of the known codes {list(PROVINCE_CODES)}"))
        part = _Part(table.name, code, month.group(1) if month else None, path, label, _stamp(path))
        key = (part.table, part.province, part.month)
        if key in parts:
            problems.append(Problem("accuracy", REJECT, label, table.name, None, [],
                                    f"two files for one partition (also {parts[key].label})"))
            continue
        parts[key] = part
    return list(parts.values()), problems


def _month_range(months: set[str]) -> list[str]:
    if not months:
        return []
    return [str(p) for p in pd.period_range(min(months), max(months), freq="M")]


def _month_number(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


@dataclass
class _Subscribers:
    """What the cross-table checks need from one province's subscriber master."""

    index: pd.Index  # msisdn, unique
    close_month: np.ndarray | None  # month number of close_date (NaN: open), aligned with index

    @classmethod
    def from_checked(cls, checked: _Checked) -> _Subscribers | None:
        if "msisdn" not in checked.values or checked.raw is None:
            return None
        msisdn = pd.Index(_as_object(checked.raw["msisdn"]))
        close = None
        if "close_date" in checked.values:
            t = pd.Series(checked.values["close_date"].values)
            close = (t.dt.year * 12 + t.dt.month - 1).to_numpy(dtype="float64", na_value=np.nan)
        first = ~msisdn.duplicated()
        return cls(msisdn[first], close[first] if close is not None else None)

    def positions(self, s: pd.Series) -> np.ndarray:
        """Row -> position in the master, -1 for numbers it does not hold."""
        if isinstance(s.dtype, pd.CategoricalDtype):
            per_cat = self.index.get_indexer(s.cat.categories.astype(object))
            codes = s.cat.codes.to_numpy()
            return np.where(codes >= 0, per_cat[np.maximum(codes, 0)], -1)
        return self.index.get_indexer(s.astype(object))


def _read_columns(path: Path, columns: list[str]) -> pd.DataFrame | None:
    """Some columns of a partition already accepted earlier; None if they can't be read."""
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, dtype=str, usecols=columns)
        return pq.read_table(path, columns=columns).to_pandas(date_as_object=False)
    except Exception:  # noqa: BLE001 - a reference that can't be read just isn't used
        return None


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
                "null_share": {c: round(k / t["rows"], 6) if t["rows"] else None for c, k in t["nulls"].items()},
                "problems": {d: sum(p.dimension == d for p in mine) for d in DIMENSIONS},
                "rejects": sum(p.severity == REJECT for p in mine),
                "warnings": sum(p.severity == WARN for p in mine),
            }
        return out


def check_raw(raw_dir: str | Path, provinces=None, months=None, *,
              reference_dir: str | Path | None = None) -> QualityReport:
    """Check every partition under ``raw_dir`` on all four dimensions.

    ``provinces`` / ``months`` restrict the check; given months are also the months every
    monthly table must have (default: each province's months from its first to its last
    seen in any table, so a gap month counts as missing). ``reference_dir`` (used by
    ``ingest``) is the already published raw folder: partitions absent from ``raw_dir``
    but present there do not count as missing, and its subscribers and complaints serve
    the cross-table checks when ``raw_dir`` has none.
    """
    report, _ = _check_tree(Path(raw_dir), provinces, months,
                            Path(reference_dir) if reference_dir is not None else None)
    return report


def _check_tree(root: Path, provinces, months, reference: Path | None) -> tuple[QualityReport, list[_Part]]:
    report = QualityReport(root=str(root))
    problems = report.problems
    if not root.is_dir():
        problems.append(Problem("completeness", REJECT, str(root), "", None, [], "folder does not exist"))
        return report, []
    parts, layout = _discover(root)
    problems.extend(layout)
    ref_parts = _discover(reference)[0] if reference is not None and reference.is_dir() else []
    wanted_provinces = set(provinces) if provinces else None
    wanted_months = sorted(set(months)) if months else None

    def keep(p: _Part) -> bool:
        return ((wanted_provinces is None or p.province in wanted_provinces)
                and (wanted_months is None or p.month is None or p.month in wanted_months))

    parts = [p for p in parts if keep(p)]
    ref_parts = [p for p in ref_parts if keep(p)]
    if not parts and not wanted_provinces:
        problems.append(Problem("completeness", REJECT, str(root), "", None, [],
                                "no partitions of any declared table found"))
    summary = _Summary()
    table_order = {name: i for i, name in enumerate(TABLES)}
    for province in sorted({p.province for p in parts} | (wanted_provinces or set())):
        mine = {(p.table, p.month): p for p in parts if p.province == province}
        theirs = {(p.table, p.month): p for p in ref_parts if p.province == province}
        _missing_partitions(root, province, mine, theirs, wanted_months, problems)

        subscribers: _Subscribers | None = None
        complaint_ids: list[pd.Series] = []
        refunds: list[tuple[_Part, pd.Series, np.ndarray]] = []
        for part in sorted(mine.values(), key=lambda p: (p.table != "subscribers", table_order[p.table],
                                                         p.month or "")):
            table = TABLES[part.table]
            checked = _check_file(part.path, table, part.label, part.month, province)
            report.files.append(part.label)
            summary.add(part.table, checked)
            problems.extend(checked.problems)
            if part.table == "subscribers" and checked.raw is not None:
                subscribers = _Subscribers.from_checked(checked)
                continue
            if checked.raw is None:
                continue
            if part.table in SUBSCRIBER_ACTIVITY and subscribers is None and ("subscribers", None) in theirs:
                subscribers = _reference_subscribers(theirs[("subscribers", None)].path)
            if part.table in SUBSCRIBER_ACTIVITY and subscribers is not None and "msisdn" in checked.values:
                problems.extend(_activity_problems(part, checked, subscribers))
            if part.table == "complaints" and "complaint_id" in checked.values:
                complaint_ids.append(_as_object(checked.raw["complaint_id"]))
            if part.table == "refunds" and "complaint_id" in checked.values:
                refunds.append((part, _as_object(checked.raw["complaint_id"]),
                                checked.values["complaint_id"].null))

        if refunds:
            for key, part in theirs.items():
                if key[0] == "complaints" and key not in mine:
                    ref = _read_columns(part.path, ["complaint_id"])
                    if ref is not None:
                        complaint_ids.append(_as_object(ref["complaint_id"]))
            known = (pd.Index(pd.concat(complaint_ids, ignore_index=True).dropna().unique())
                     if complaint_ids else pd.Index([]))
            for part, ids, null in refunds:
                problems.extend(_refund_problems(part, ids, null, known))

    # Rejects first, so that the first lines of any listing are the ones that block.
    problems.sort(key=lambda p: p.severity != REJECT)
    report.per_table = summary.result(problems)
    return report, parts


def _missing_partitions(root: Path, province: str, mine: dict, theirs: dict, wanted_months,
                        problems: list[Problem]) -> None:
    seen = {m for (_, m) in list(mine) + list(theirs) if m}
    expected = wanted_months or _month_range(seen)
    for name, table in TABLES.items():
        for month in (expected if table.monthly else [None]):
            if (name, month) in mine or (name, month) in theirs:
                continue
            label = _label(root, partition_path(root, name, province, month))
            when = f" for {month}" if month else ""
            problems.append(Problem("timeliness" if month else "completeness", REJECT, label, name, None, [],
                                    f"missing partition: no {name}{when} in province {province}"))


def _reference_subscribers(path: Path) -> _Subscribers | None:
    frame = _read_columns(path, ["msisdn", "close_date"])
    if frame is None:
        return None
    v = _coerce(frame["close_date"], "date")
    values = {"msisdn": _coerce(frame["msisdn"], "str")}
    if not v.bad.any():
        values["close_date"] = v
    return _Subscribers.from_checked(_Checked([], len(frame), values=values, raw=frame))


def _activity_problems(part: _Part, checked: _Checked, subscribers: _Subscribers) -> list[Problem]:
    out = _Collector(part.label, part.table)
    assert checked.raw is not None
    s = checked.raw["msisdn"]
    pos = subscribers.positions(s)
    unknown = (pos < 0) & ~checked.values["msisdn"].null
    if unknown.any():
        out.add("authenticity", REJECT, f"{int(unknown.sum())} of {len(s)} rows for numbers not in the "
                f"subscribers of province {part.province}, e.g. {_examples(s, unknown)}", "msisdn", unknown)
    what = CLOSED_LINE_ACTIVITY.get(part.table)
    if what and part.month and subscribers.close_month is not None:
        close = np.where(pos >= 0, subscribers.close_month[np.maximum(pos, 0)], np.nan)
        with np.errstate(invalid="ignore"):
            after = close < _month_number(part.month)
        if after.any():
            out.add("authenticity", WARN, f"{what} for closed lines: {int(after.sum())} row(s) in {part.month} "
                    f"for lines closed in an earlier month, e.g. {_examples(s, after)}", "msisdn", after)
    return out.problems


def _refund_problems(part: _Part, ids: pd.Series, null: np.ndarray, known: pd.Index) -> list[Problem]:
    unknown = ~null & ~ids.isin(known).to_numpy(dtype=bool)
    without = null | unknown
    if not without.any():
        return []
    n, k = len(ids), int(without.sum())
    out = _Collector(part.label, part.table)
    out.add("authenticity", WARN, f"refunds without complaints: {k} of {n} refunds ({k / n:.1%}); "
            f"complaint_id empty: {int(null.sum())}, not in complaints: {int(unknown.sum())}",
            "complaint_id", without)
    return out.problems


# --------------------------------------------------------------------------- ingest


def _arrow_types(kind: str) -> pa.DataType:
    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
            "timestamp": pa.timestamp("ns"), "date": pa.date32()}[kind]


def _csv_as_parquet(source: Path, table: Table, target: Path) -> None:
    """Write an accepted CSV partition as Parquet with the declared column types."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=True)
    arrays = []
    for col in table.columns:
        v = _coerce(frame[col.name], col.kind)
        if col.kind == "str":
            arr = pa.array(_as_object(frame[col.name]).where(~v.null, None).to_numpy(dtype=object),
                           type=pa.string(), from_pandas=True)
        elif col.kind in ("int", "float"):
            vals = pd.array(np.asarray(v.values, dtype="float64"))
            arr = pa.array(vals.astype("Int64") if col.kind == "int" else vals, type=_arrow_types(col.kind))
        elif col.kind == "bool":
            arr = pa.array(pd.Series(v.values).astype("boolean"), type=pa.bool_())
        else:
            ts = pa.array(pd.Series(v.values).astype("datetime64[ns]"), type=pa.timestamp("ns"))
            arr = pc.cast(ts, pa.date32(), safe=False) if col.kind == "date" else ts
        arrays.append(arr)
    pq.write_table(pa.Table.from_arrays(arrays, names=table.column_names), target)


def ingest(source_dir: str | Path, raw_dir: str | Path) -> QualityReport:
    """Check every partition under ``source_dir`` (laid out like raw/) and publish them.

    All of the source is checked first (``check_raw`` against the published ``raw_dir``);
    any reject raises DataQualityError and nothing is written. Otherwise every source
    partition is copied next to its destination under a hidden temporary name, and only
    when all copies are complete are they renamed over the destinations (``os.replace``),
    so a destination is always either its previous or its new content. Files not in the
    source stay untouched; CSV partitions are stored as Parquet. Returns the report (the
    caller writes it).
    """
    source_dir, raw_dir = Path(source_dir), Path(raw_dir)
    report, parts = _check_tree(source_dir, None, None, raw_dir)
    report.raise_if_rejected()
    staged: list[tuple[Path, Path]] = []
    try:
        for part in parts:
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
            if _stamp(part.path) != part.stamp:
                raise DataQualityError([Problem("authenticity", REJECT, part.label, part.table, None, [],
                                                "file changed while it was being ingested; try again")])
        for staged_file, dest in staged:
            os.replace(staged_file, dest)
    finally:
        for staged_file, _ in staged:  # after a failure: the temporaries not yet renamed
            staged_file.unlink(missing_ok=True)
    return report


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


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
    for ind in (CATALOGUE if indicators is None else indicators):
        out = _Collector(label, ind.subject)
        if ind.id not in frame.columns:
            out.add("completeness", REJECT, "indicator missing from the frame", ind.id)
        else:
            kind = "str" if ind.kind == "category" else ind.kind
            s = frame[ind.id]
            _check_values(out, s, _coerce(s, kind), name=ind.id, kind=kind, nullable=ind.nullable,
                          max_null_share=1.0, codes=ind.codes, valid_range=ind.valid_range)
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
        v = _coerce(s, "str" if ind.kind == "category" else ind.kind)
        entry: dict = {"present": True, "null_share": round(float(v.null.mean()), 6) if n else None}
        if ind.kind == "category":
            shares = _as_object(s)[~v.null].value_counts(normalize=True)
            entry["codes"] = {str(k): round(float(x), 6) for k, x in shares.items()}
        else:
            vals = np.asarray(v.values, dtype="float64")[~v.null & ~v.bad]
            entry.update({"min": float(vals.min()) if len(vals) else None,
                          "max": float(vals.max()) if len(vals) else None,
                          "mean": float(vals.mean()) if len(vals) else None})
        summary[ind.id] = entry
    return summary


__all__ = ["DIMENSIONS", "Problem", "QualityReport", "check_frame", "check_partition", "check_raw",
           "check_indicators", "per_indicator", "ingest"]
