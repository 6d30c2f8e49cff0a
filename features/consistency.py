"""Checks across partitions and tables: the layout and completeness of a raw folder's
partitions, and whether one province's tables agree with each other.

Across partitions: files out of place or doubled (``features.partitions.discover``'s
findings, weighed here), and partitions missing from a province — every monthly table must
have every month (timeliness), every master table must be there (completeness). Across
tables (authenticity): usage, bills and payments belong to known subscribers of the
province, closed lines are not billed or used after they closed, refunds go with a
complaint. The per-column checks are ``features.values``'s; ``features.quality.check_raw``
runs these for each province.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from core.io import month_list
from features.partitions import (
    DUPLICATE,
    MISPLACED,
    OUTSIDE,
    UNKNOWN_PROVINCE,
    LayoutIssue,
    Partition,
    label_of,
)
from features.schemas import TABLES, partition_path
from features.values import REJECT, WARN, Collector, Problem, Values, as_object, coerce, examples

#: Activity that only a known subscriber of the same province can have.
SUBSCRIBER_ACTIVITY = ("monthly_bills", "payments", "usage")
#: Activity a line cannot have after the month it closed, and what the report calls it.
CLOSED_LINE_ACTIVITY = {"monthly_bills": "bills", "usage": "usage"}
#: How bad each kind of layout finding of ``features.partitions.discover`` is.
_LAYOUT = {
    OUTSIDE: ("completeness", WARN),
    MISPLACED: ("completeness", REJECT),
    UNKNOWN_PROVINCE: ("accuracy", WARN),
    DUPLICATE: ("accuracy", REJECT),
}

#: Partitions of one province by (table, month); month is None for master tables.
Partitions = dict[tuple[str, str | None], Partition]


# --------------------------------------------------------------------------- across partitions


def layout_problems(issues: list[LayoutIssue]) -> list[Problem]:
    """The problems of files whose place breaks the layout, each weighed by its kind."""
    return [
        Problem(
            *_LAYOUT[issue.kind],
            issue.label,
            issue.table,
            None,
            [],
            issue.message,
            issue.province,
            issue.month,
        )
        for issue in issues
    ]


def _month_range(months: set[str]) -> list[str]:
    """Every month from the first to the last of ``months``."""
    if not months:
        return []
    first, last = min(months), max(months)
    return month_list(first, _month_number(last) - _month_number(first) + 1)


def _month_number(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def missing_partitions(
    root: Path, province: str, mine: Partitions, theirs: Partitions, wanted_months
) -> list[Problem]:
    """Partitions of ``province`` in neither ``mine`` nor ``theirs`` (the published ones).

    Monthly tables must have each of ``wanted_months`` (default: every month from the first
    to the last seen in any table of the province), master tables must be there at all."""
    problems: list[Problem] = []
    seen = {m for (_, m) in list(mine) + list(theirs) if m}
    expected = wanted_months or _month_range(seen)
    for name, table in TABLES.items():
        if table.fed_back:  # only the CRM's feedback writes it: absent until some arrives
            continue
        for month in expected if table.monthly else [None]:
            if (name, month) in mine or (name, month) in theirs:
                continue
            label = label_of(root, partition_path(root, name, province, month))
            when = f" for {month}" if month else ""
            problems.append(
                Problem(
                    "timeliness" if month else "completeness",
                    REJECT,
                    label,
                    name,
                    None,
                    [],
                    f"missing partition: no {name}{when} in province {province}",
                    province,
                    month,
                )
            )
    return problems


# --------------------------------------------------------------------------- across tables


@dataclass
class _Subscribers:
    """What the cross-table checks need from one province's subscriber master."""

    index: pd.Index  # msisdn, unique
    close_month: np.ndarray | None  # month number of close_date (NaN: open), aligned with index

    @classmethod
    def from_columns(cls, values: dict[str, Values], raw: pd.DataFrame) -> _Subscribers | None:
        """From the master's rows and its columns of the declared type; None without msisdn."""
        if "msisdn" not in values:
            return None
        msisdn = pd.Index(as_object(raw["msisdn"]))
        close = None
        if "close_date" in values:
            t = pd.Series(values["close_date"].values)
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


def _reference_subscribers(path: Path) -> _Subscribers | None:
    frame = _read_columns(path, ["msisdn", "close_date"])
    if frame is None:
        return None
    v = coerce(frame["close_date"], "date")
    values = {"msisdn": coerce(frame["msisdn"], "str")}
    if not v.bad.any():
        values["close_date"] = v
    return _Subscribers.from_columns(values, frame)


def _activity_problems(
    part: Partition, s: pd.Series, null: np.ndarray, subscribers: _Subscribers
) -> list[Problem]:
    """Rows of ``part`` (msisdn column ``s``, empty where ``null``) of unknown or closed lines."""
    out = Collector(part.label, part.table, part.province, part.month)
    pos = subscribers.positions(s)
    unknown = (pos < 0) & ~null
    if unknown.any():
        out.add(
            "authenticity",
            REJECT,
            f"{int(unknown.sum())} of {len(s)} rows for numbers not in the "
            f"subscribers of province {part.province}, e.g. {examples(s, unknown)}",
            "msisdn",
            unknown,
        )
    what = CLOSED_LINE_ACTIVITY.get(part.table)
    if what and part.month and subscribers.close_month is not None:
        close = np.where(pos >= 0, subscribers.close_month[np.maximum(pos, 0)], np.nan)
        with np.errstate(invalid="ignore"):
            after = close < _month_number(part.month)
        if after.any():
            out.add(
                "authenticity",
                WARN,
                f"{what} for closed lines: {int(after.sum())} row(s) in "
                f"{part.month} for lines closed in an earlier month, e.g. {examples(s, after)}",
                "msisdn",
                after,
            )
    return out.problems


def _refund_problems(part: Partition, ids: pd.Series, null: np.ndarray, known: pd.Index) -> list[Problem]:
    unknown = ~null & ~ids.isin(known).to_numpy(dtype=bool)
    without = null | unknown
    if not without.any():
        return []
    n, k = len(ids), int(without.sum())
    out = Collector(part.label, part.table, part.province, part.month)
    out.add(
        "authenticity",
        WARN,
        f"refunds without complaints: {k} of {n} refunds ({k / n:.1%}); "
        f"complaint_id empty: {int(null.sum())}, not in complaints: {int(unknown.sum())}",
        "complaint_id",
        without,
    )
    return out.problems


class CrossTableChecks:
    """The authenticity checks of one province's tables, fed its readable partitions one by one.

    ``mine`` are the partitions being checked, ``theirs`` the published ones: they stand in
    for subscribers and complaints the delivery lacks. Subscribers must be fed before the
    activity tables; refunds are judged by ``finish``, once every complaint has been seen.
    """

    def __init__(self, mine: Partitions, theirs: Partitions):
        self.mine, self.theirs = mine, theirs
        self.subscribers: _Subscribers | None = None
        self.complaint_ids: list[pd.Series] = []
        self.refunds: list[tuple[Partition, pd.Series, np.ndarray]] = []

    def add(self, part: Partition, values: dict[str, Values], raw: pd.DataFrame) -> list[Problem]:
        """Take in one partition (its rows, and its columns of the declared type in ``values``);
        the problems of its rows against the subscribers."""
        if part.table == "subscribers":
            self.subscribers = _Subscribers.from_columns(values, raw)
            return []
        problems: list[Problem] = []
        activity = part.table in SUBSCRIBER_ACTIVITY
        if activity and self.subscribers is None and ("subscribers", None) in self.theirs:
            self.subscribers = _reference_subscribers(self.theirs[("subscribers", None)].path)
        if activity and self.subscribers is not None and "msisdn" in values:
            problems.extend(_activity_problems(part, raw["msisdn"], values["msisdn"].null, self.subscribers))
        if part.table == "complaints" and "complaint_id" in values:
            self.complaint_ids.append(as_object(raw["complaint_id"]))
        if part.table == "refunds" and "complaint_id" in values:
            self.refunds.append((part, as_object(raw["complaint_id"]), values["complaint_id"].null))
        return problems

    def finish(self) -> list[Problem]:
        """The refunds without a complaint, against the province's complaints, old and new."""
        if not self.refunds:
            return []
        complaint_ids = list(self.complaint_ids)
        for key, part in self.theirs.items():
            if key[0] == "complaints" and key not in self.mine:
                ref = _read_columns(part.path, ["complaint_id"])
                if ref is not None:
                    complaint_ids.append(as_object(ref["complaint_id"]))
        known = (
            pd.Index(pd.concat(complaint_ids, ignore_index=True).dropna().unique())
            if complaint_ids
            else pd.Index([])
        )
        problems: list[Problem] = []
        for part, ids, null in self.refunds:
            problems.extend(_refund_problems(part, ids, null, known))
        return problems


__all__ = [
    "SUBSCRIBER_ACTIVITY",
    "CLOSED_LINE_ACTIVITY",
    "CrossTableChecks",
    "layout_problems",
    "missing_partitions",
]
