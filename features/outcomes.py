"""The credit outcome: bad credit evidence in the months after a snapshot, from ``credit_events``.

A real province has no column of true credit grades; what it has is the evidence complaint
handling, billing and the imported lists feed back over the following months. The outcome of
a customer's snapshot of month ``m`` is

* ``credit_bad_event = 1`` when one of the definition's event types occurs in the months
  ``m+1 .. m+horizon_months`` (by the event's calendar month; events of ``m`` and before are
  the snapshot's own history, which the indicators already hold);
* ``0`` when none occurs and the data covers the whole horizon (``m + horizon_months`` is at
  or before the last month of the events);
* empty (NaN, not matured) when the data does not cover the whole horizon yet — also when a
  bad event has already been seen: a label known early only when it is bad would make the
  latest months look worse than they are.

The default definition (``CreditOutcome()``): every known event type counts — a complaint
verified unfounded (投诉核实不实), a refund reversed (退费冲正/追回), a double refund found
(双返), arrears written off (欠费核销/坏账), a black-list entry (黑名单) — within 3 months.
A province file may override it under ``credit_outcome:`` (``events``: a subset of the known
types; ``horizon_months``: 1 to 12). A line that closes within the horizon has the evidence
of the months it was open.

Pure functions of DataFrames; the generator labels its world with them and training may too.
"""

from __future__ import annotations

import difflib
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from features.schemas import CREDIT_EVENT_TYPES

#: The label column the outcome is written to, beside the generator's other labels.
OUTCOME_COLUMN = "credit_bad_event"
DEFAULT_HORIZON_MONTHS = 3
MAX_HORIZON_MONTHS = 12
#: Month numbers (months since year 0) stay below this: a customer's code times it plus a month is a pair.
_PAIR = 1_000_000


def _event_type(value: str) -> str:
    if value not in CREDIT_EVENT_TYPES:
        close = difflib.get_close_matches(value, CREDIT_EVENT_TYPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown credit event type {value!r}{hint}; known types: {', '.join(CREDIT_EVENT_TYPES)}"
        )
    return value


EventType = Annotated[str, AfterValidator(_event_type)]


class CreditOutcome(BaseModel):
    """Which credit events make a snapshot's outcome bad, and within how many months."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: tuple[EventType, ...] = CREDIT_EVENT_TYPES
    horizon_months: Annotated[int, Field(ge=1, le=MAX_HORIZON_MONTHS)] = DEFAULT_HORIZON_MONTHS

    @field_validator("events")
    @classmethod
    def _some_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"list at least one credit event type of: {', '.join(CREDIT_EVENT_TYPES)}")
        twice = sorted({v for v in value if value.count(v) > 1})
        if twice:
            raise ValueError(f"credit event types listed more than once: {', '.join(twice)}")
        return value


DEFAULT_OUTCOME = CreditOutcome()


def _month_number(months) -> np.ndarray:
    """'YYYY-MM' strings (or Periods) -> months since year 0 (each distinct month parsed once)."""
    position, distinct = pd.factorize(pd.Series(months).astype(str))
    p = pd.PeriodIndex(distinct, freq="M")
    return (p.year * 12 + p.month - 1).to_numpy(np.int64)[position]


def _event_month_number(times: pd.Series) -> np.ndarray:
    t = pd.to_datetime(times)
    if t.dt.tz is not None:
        t = t.dt.tz_convert(None)
    return (t.dt.year * 12 + t.dt.month - 1).to_numpy(np.int64)


def credit_bad_event(
    snapshots: pd.DataFrame,
    events: pd.DataFrame,
    data_end: str,
    definition: CreditOutcome = DEFAULT_OUTCOME,
) -> pd.Series:
    """The outcome per snapshot row: 1.0, 0.0 or NaN (not matured), aligned to ``snapshots``.

    ``snapshots``: ``msisdn`` and ``month`` ("YYYY-MM") per row. ``events``: ``msisdn``,
    ``event_time``, ``event_type`` (the ``credit_events`` table). ``data_end``: the last month
    the events cover ("YYYY-MM").
    """
    month = _month_number(snapshots["month"])
    matured = month + definition.horizon_months <= _month_number([data_end])[0]
    counted = events[events["event_type"].astype(str).isin(definition.events)]
    # (customer, month) pairs as one integer each: a customer's code, then the month number
    n = len(snapshots)
    codes, _ = pd.factorize(
        np.concatenate([snapshots["msisdn"].astype(str).to_numpy(), counted["msisdn"].astype(str).to_numpy()])
    )
    customer = codes.astype(np.int64) * _PAIR
    seen = np.unique(customer[n:] + _event_month_number(counted["event_time"]))
    bad = np.zeros(n, dtype=bool)
    for ahead in range(1, definition.horizon_months + 1):
        bad |= np.isin(customer[:n] + month + ahead, seen)
    return pd.Series(np.where(matured, bad.astype(float), np.nan), index=snapshots.index, name=OUTCOME_COLUMN)


__all__ = ["CreditOutcome", "DEFAULT_OUTCOME", "OUTCOME_COLUMN", "credit_bad_event"]
