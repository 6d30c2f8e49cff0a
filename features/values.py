"""Column values against their declared kind: coercion and the per-column checks.

``coerce`` brings one column to its declared kind, leniently, and says which rows are empty
and which don't fit; ``check_values`` judges one column on type, completeness, codes and
range. The findings are ``Problem``s (with their dimensions and the ``REJECT`` / ``WARN``
severities), gathered per file by a ``Collector``; the small helpers that pick and show
offending values for messages live here too, for every check of the gate to share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

DIMENSIONS = ("completeness", "accuracy", "timeliness", "authenticity")
REJECT, WARN = "reject", "warn"
#: Example rows kept per problem.
MAX_ROWS = 10
_BOOL_WORDS = {
    "true": True,
    "false": False,
    "t": True,
    "f": False,
    "1": True,
    "0": False,
    "1.0": True,
    "0.0": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
}


@dataclass
class Problem:
    """One finding of the gate, naming the file, column and example rows (0-based file rows).

    A problem about a raw partition also names its province (and month, for monthly
    tables), and is shown by table and partition rather than by file:
    ``refunds province=GD month=2026-03: column complaint_id rows [25, 26]: ...``.
    """

    dimension: str  # one of DIMENSIONS
    severity: str  # "reject" | "warn"
    file: str
    table: str
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    message: str = ""
    province: str | None = None
    month: str | None = None

    @property
    def partition(self) -> str:
        """``province=XX month=YYYY-MM`` (no month for master tables); "" if not about a partition."""
        if not self.province:
            return ""
        return f"province={self.province}" + (f" month={self.month}" if self.month else "")

    def __str__(self) -> str:
        text = f"{self.table} {self.partition}" if self.partition else self.file
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
class Values:
    """One column in canonical form: the values, which rows are empty, which don't fit the kind."""

    values: pd.Series | np.ndarray  # str: as stored; int/float: float64; bool: boolean; time: datetime64
    null: np.ndarray
    bad: np.ndarray  # non-empty values that are not of the declared kind
    stored_as: str


def _is_textual(dtype) -> bool:
    return (
        pd.api.types.is_object_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _null_mask(s: pd.Series) -> np.ndarray:
    null = s.isna().to_numpy(dtype=bool)
    if _is_textual(s.dtype) and len(s):
        # An empty string is a missing value as far as completeness is concerned.
        null |= pd.array(s == "", dtype="boolean").to_numpy(dtype=bool, na_value=False)
    return null


def as_object(s: pd.Series) -> pd.Series:
    """A categorical column as plain objects (other columns unchanged)."""
    return s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s


def coerce(s: pd.Series, kind: str) -> Values:
    """Bring one column to its declared kind, leniently: ints stored as whole floats, bools
    as 0/1 or words, timestamps and dates as parseable strings, text as categories.

    ``kind`` is a schema column kind ("str", "int", "float", "bool", "timestamp", "date")."""
    dtype = s.dtype
    stored_as = (
        f"category of {dtype.categories.dtype}" if isinstance(dtype, pd.CategoricalDtype) else str(dtype)
    )
    null = _null_mask(s)
    n = len(s)
    nothing = np.zeros(n, dtype=bool)
    if null.all():  # an all-empty column fits any kind; completeness judges it
        empty = pd.Series(np.full(n, np.nan)) if kind in ("int", "float") else s
        if kind in ("timestamp", "date"):
            empty = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
        return Values(empty, null, nothing, stored_as)
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)

    if kind == "str":
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            if pd.api.types.infer_dtype(cats, skipna=True) in ("string", "empty"):
                return Values(s, null, nothing, stored_as)
            cat_bad = np.array([not isinstance(c, str) for c in cats], dtype=bool)
            codes = s.cat.codes.to_numpy()
            return Values(s, null, (codes >= 0) & cat_bad[np.maximum(codes, 0)], stored_as)
        if pd.api.types.is_object_dtype(dtype):
            if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
                return Values(s, null, nothing, stored_as)
            is_str = s.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)  # only on bad columns
            return Values(s, null, ~null & ~is_str, stored_as)
        if pd.api.types.is_string_dtype(dtype):
            return Values(s, null, nothing, stored_as)
        return Values(s, null, ~null, stored_as)

    if kind in ("int", "float"):
        if numeric:
            vals = s.to_numpy(dtype="float64", na_value=np.nan)
            bad = nothing.copy()
        elif _is_textual(dtype) and not pd.api.types.is_bool_dtype(dtype):
            vals = pd.to_numeric(as_object(s), errors="coerce")
            vals = np.asarray(vals.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
            bad = ~null & np.isnan(vals)
        else:  # bools, timestamps where a number is declared
            vals, bad = np.full(n, np.nan), ~null
        if kind == "int":
            with np.errstate(invalid="ignore"):
                bad |= ~np.isnan(vals) & np.isfinite(vals) & (vals != np.floor(vals))
        vals = np.where(bad, np.nan, vals)
        return Values(vals, null, bad, stored_as)

    if kind == "bool":
        if pd.api.types.is_bool_dtype(dtype):
            return Values(s.astype("boolean"), null, nothing, stored_as)
        if numeric:
            arr = s.to_numpy(dtype="float64", na_value=np.nan)
            ok = (arr == 0) | (arr == 1)
            vals = pd.Series(pd.array(arr == 1, dtype="boolean")).where(ok, pd.NA)
            return Values(vals, null, ~null & ~ok, stored_as)
        if _is_textual(dtype):
            words = s.astype("string").str.strip().str.lower().map(_BOOL_WORDS)
            ok = words.notna().to_numpy(dtype=bool)
            vals = pd.Series(pd.array(words.where(ok, None).tolist(), dtype="boolean"))
            return Values(vals, null, ~null & ~ok, stored_as)
        return Values(pd.Series(pd.NA, index=range(n), dtype="boolean"), null, ~null, stored_as)

    if kind in ("timestamp", "date"):
        if pd.api.types.is_datetime64_any_dtype(dtype):
            vals = s
            if getattr(dtype, "tz", None) is not None:
                vals = s.dt.tz_convert("UTC").dt.tz_localize(None)
            return Values(vals.reset_index(drop=True), null, nothing, stored_as)
        if _is_textual(dtype):
            src = as_object(s).reset_index(drop=True)
            vals = pd.to_datetime(src, errors="coerce", format="ISO8601", utc=True)
            failed = ~null & vals.isna().to_numpy()
            if failed.any():  # a slower, per-value parse only for what ISO 8601 could not read
                vals[failed] = pd.to_datetime(src[failed], errors="coerce", format="mixed", utc=True)
            vals = vals.dt.tz_localize(None)
            return Values(vals, null, ~null & vals.isna().to_numpy(), stored_as)
        return Values(pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]"), null, ~null, stored_as)

    raise ValueError(f"unknown column kind {kind!r}")


def _rows(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask)[:MAX_ROWS].tolist()


def show(value) -> str:
    """One value as the gate's messages show it."""
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
        shown = show(values.iloc[i] if isinstance(values, pd.Series) else values[i])
        if shown not in seen:
            seen.append(shown)
        if len(seen) == limit:
            break
    return seen


def examples(values, mask: np.ndarray, limit: int = 3) -> str:
    """A few distinct values from the rows in ``mask``, comma-separated, for a message."""
    return ", ".join(_distinct(values, mask, limit))


def _offending(values, mask: np.ndarray) -> tuple[str, str]:
    """("value X" or "values X, Y", "; N rows in all" when the example rows don't list them all)."""
    shown = _distinct(values, mask)
    k = int(mask.sum())
    return (
        f"{'value' if len(shown) == 1 else 'values'} {', '.join(shown)}",
        f"; {k} rows in all" if k > MAX_ROWS else "",
    )


def str_matches(s: pd.Series, pattern: str) -> np.ndarray:
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


class Collector:
    """Collects the problems of one file (of one partition, when ``province`` is given)."""

    def __init__(self, label: str, table: str, province: str | None = None, month: str | None = None):
        self.label, self.table, self.province, self.month = label, table, province, month
        self.problems: list[Problem] = []

    def add(
        self,
        dimension: str,
        severity: str,
        message: str,
        column: str | None = None,
        mask: np.ndarray | None = None,
    ) -> None:
        rows = _rows(mask) if mask is not None else []
        self.problems.append(
            Problem(
                dimension, severity, self.label, self.table, column, rows, message, self.province, self.month
            )
        )


def check_values(
    out: Collector,
    s: pd.Series,
    v: Values,
    *,
    name: str,
    kind: str,
    nullable: bool,
    max_null_share: float,
    codes,
    valid_range,
) -> bool:
    """Type, completeness, codes and range of one column; False if its type is wrong."""
    n = len(s)
    if v.bad.any():
        what, total = _offending(s, v.bad)
        out.add(
            "accuracy", REJECT, f"{what} not of type {kind} (stored as {v.stored_as}){total}", name, v.bad
        )
        return False
    nulls = int(v.null.sum())
    if nulls and not nullable:
        out.add("completeness", REJECT, f"{nulls} empty value(s) in a required column", name, v.null)
    elif nullable and n and nulls / n > max_null_share:
        out.add(
            "completeness",
            WARN,
            f"{nulls / n:.1%} empty ({nulls} of {n} rows), above the tolerated {max_null_share:.1%}",
            name,
            v.null,
        )
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
            out.add(
                "accuracy",
                REJECT,
                f"{what} outside valid range [{_bound(lo)}, {_bound(hi)}]{total}",
                name,
                bad,
            )
    return True


__all__ = [
    "DIMENSIONS",
    "MAX_ROWS",
    "REJECT",
    "WARN",
    "Collector",
    "Problem",
    "Values",
    "as_object",
    "check_values",
    "coerce",
    "examples",
    "show",
    "str_matches",
]
