"""Compute the indicator library per customer per month from the raw tables.

Two pure stages, shared by the indicator build and by the generator's labels (so the
oracle sees exactly what a model sees):

1. ``aggregate_month``: one month's raw partitions -> per-customer monthly sums,
   aligned to the subscriber master's order.
2. ``indicators_at``: the monthly sums up to a snapshot month -> one row per active
   customer with every indicator of the catalogue. Nothing after the snapshot is read.

``build_indicators`` is the thin I/O layer: read raw partitions, write one Parquet file
per feature view, province and month (atomically).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from core import indicators as lib
from core.indicators import CHANNELS
from core.io import atomic_write_parquet, month_list, remove_stale_temporaries, snapshot_time
from core.logs import get_logger
from features.schemas import TABLES, read_partition

log = get_logger(__name__)

MonthAggregate = dict[str, np.ndarray]
#: The longest indicator window, in months (the 12-month counts, days since the last complaint).
WINDOW_MONTHS = 12

#: Monthly sums that windows are built from; each an array over the subscriber master.
SUM_COLUMNS = (
    "total_fee",
    "has_bill",
    "arrears_flag",
    "arrears_amount",
    "suspended",
    "voice_minutes",
    "data_mb",
    "data_known",
    "sms_count",
    "roaming_minutes",
    "monternet_ports",
    "services_used",
    "distinct_callees",
    "complaints",
    "billing_complaints",
    "escalated",
    "satisfaction_sum",
    "satisfaction_n",
    "refunds",
    "refund_amount",
    "double_refunds",
    "gifts",
    "gift_amount",
    "inquiries",
    *(f"contacts_{c}" for c in CHANNELS),
    "outbound_answered",
    "outbound_responded",
)


def _positions(index: pd.Index, msisdn: pd.Series) -> np.ndarray:
    """Row positions of phone numbers in the subscriber master (-1 if unknown)."""
    if isinstance(msisdn.dtype, pd.CategoricalDtype):
        category_pos = index.get_indexer(msisdn.cat.categories.astype(str))
        return category_pos[msisdn.cat.codes.to_numpy()]
    return index.get_indexer(msisdn.astype(str))


def _count(n: int, pos: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    keep = pos >= 0
    w = None if weights is None else np.nan_to_num(np.asarray(weights, dtype=float)[keep])
    return np.bincount(pos[keep], weights=w, minlength=n).astype(float)


def _per_customer(n: int, pos: np.ndarray, values: pd.Series | np.ndarray, fill=np.nan) -> np.ndarray:
    """One value per customer from a table keyed by customer and month."""
    out = np.full(n, fill, dtype=float)
    keep = pos >= 0
    out[pos[keep]] = np.asarray(values, dtype=float)[keep]
    return out


def aggregate_month(index: pd.Index, tables: Mapping[str, pd.DataFrame]) -> MonthAggregate:
    """Per-customer sums of one month's raw partitions, aligned to ``index`` (the MSISDNs)."""
    n = len(index)
    agg: MonthAggregate = {}

    bills = tables["monthly_bills"]
    pos = _positions(index, bills["msisdn"])
    agg["total_fee"] = _per_customer(n, pos, bills["total_fee"], fill=0.0)
    agg["has_bill"] = _per_customer(n, pos, np.ones(len(bills)), fill=0.0)

    pay = tables["payments"]
    pos = _positions(index, pay["msisdn"])
    agg["arrears_amount"] = _per_customer(n, pos, pay["arrears_amount"], fill=0.0)
    agg["arrears_flag"] = (agg["arrears_amount"] > 0).astype(float)
    agg["suspended"] = _per_customer(n, pos, pay["suspended_for_arrears"].astype(float), fill=0.0)

    use = tables["usage"]
    pos = _positions(index, use["msisdn"])
    for col in ("voice_minutes", "sms_count", "monternet_ports", "distinct_callees"):
        agg[col] = _per_customer(n, pos, use[col], fill=0.0)
    agg["data_mb"] = _per_customer(n, pos, use["data_mb"])
    agg["data_known"] = (~np.isnan(agg["data_mb"])).astype(float)
    roaming = use["roaming_minutes"].to_numpy(float) + use["boundary_roaming_minutes"].to_numpy(float)
    agg["roaming_minutes"] = _per_customer(n, pos, roaming, fill=0.0)
    services = (
        (use["voice_minutes"].to_numpy(float) > 0).astype(int)
        + (use["data_mb"].fillna(0).to_numpy(float) > 0)
        + (use["sms_count"].to_numpy() > 0)
        + (use["mms_count"].to_numpy() > 0)
        + (roaming > 0)
        + use["ringback_tone"].to_numpy(bool)
        + (use["monternet_ports"].to_numpy() > 0)
    )
    agg["services_used"] = _per_customer(n, pos, services, fill=0.0)

    comp = tables["complaints"]
    pos = _positions(index, comp["msisdn"])
    agg["complaints"] = _count(n, pos)
    agg["billing_complaints"] = _count(n, pos, (comp["category"] == "billing").to_numpy(float))
    agg["escalated"] = _count(n, pos, (comp["outcome"] == "escalated").to_numpy(float))
    sat = comp["satisfaction"].to_numpy(float)
    agg["satisfaction_sum"] = _count(n, pos, np.nan_to_num(sat))
    agg["satisfaction_n"] = _count(n, pos, (~np.isnan(sat)).astype(float))
    last = np.full(n, -np.inf)
    if len(comp):
        times = pd.to_datetime(comp["complaint_time"], utc=True).dt.tz_convert(None)
        seconds = times.to_numpy().astype("datetime64[s]").astype(np.int64).astype(float)
        keep = pos >= 0
        np.maximum.at(last, pos[keep], seconds[keep])
    agg["last_complaint_epoch"] = last

    ref = tables["refunds"]
    pos = _positions(index, ref["msisdn"])
    agg["refunds"] = _count(n, pos)
    agg["refund_amount"] = _count(n, pos, ref["amount"].to_numpy(float))
    agg["double_refunds"] = _count(n, pos, ref["is_double_refund"].to_numpy(float))

    # imported small gifts (小额赠送); a month without the import (the generator's trial months) has none
    gifts = tables.get("small_gifts")
    pos = _positions(index, gifts["msisdn"]) if gifts is not None else np.zeros(0, dtype=np.int64)
    agg["gifts"] = _count(n, pos)
    agg["gift_amount"] = _count(n, pos, gifts["amount"].to_numpy(float) if gifts is not None else None)

    inq = tables["billing_inquiries"]
    agg["inquiries"] = _count(n, _positions(index, inq["msisdn"]))

    con = tables["channel_contacts"]
    pos = _positions(index, con["msisdn"])
    channel = con["channel"].astype(str).to_numpy()
    for c in CHANNELS:
        agg[f"contacts_{c}"] = _count(n, pos, (channel == c).astype(float))
    response = con["campaign_response"]
    answered = response.notna().to_numpy()
    agg["outbound_answered"] = _count(n, pos, answered.astype(float))
    agg["outbound_responded"] = _count(n, pos, response.astype("boolean").fillna(False).to_numpy(dtype=float))
    return agg


def _window(history: Sequence[MonthAggregate], column: str, months: int) -> np.ndarray:
    return np.sum([h[column] for h in history[-months:]], axis=0)


def indicators_at(
    subscribers: pd.DataFrame,
    red_black_list: pd.DataFrame,
    history: Sequence[MonthAggregate],
    month: str,
) -> pd.DataFrame:
    """Every indicator for the customers active at the end of ``month``.

    ``history`` holds the monthly aggregates up to and including ``month`` (older first);
    windows shorter than 12 months use what history there is. A line's first bill (its
    activation month, pro rata) is no baseline for ``bill_change_ratio``.
    """
    at = snapshot_time(month)
    activation = pd.to_datetime(subscribers["activation_date"]).dt.tz_localize("UTC")
    close = pd.to_datetime(subscribers["close_date"]).dt.tz_localize("UTC")
    active = ((activation <= at) & (close.isna() | (close > at))).to_numpy()

    cur = history[-1]
    prior = history[-4:-1]
    n = len(subscribers)
    # Columns gathered as arrays and made a frame once (inserting ~60 columns one by one into a
    # frame costs more than computing them).
    out: dict[str, np.ndarray] = {"msisdn": subscribers["msisdn"].astype(str).to_numpy()}

    for col in ("province", "customer_category", "brand", "payment_method"):
        out[col] = subscribers[col].astype(str).to_numpy()
    out["terminal_class"] = (
        subscribers["terminal_class"].astype(object).fillna("unknown").astype(str).to_numpy()
    )
    tenure_days = (at - activation).dt.days.to_numpy()
    out["tenure_months"] = np.maximum(tenure_days // 30.4375, 0).astype(np.int64)
    out["number_level"] = subscribers["number_level"].to_numpy(np.int64)
    listed = red_black_list[pd.to_datetime(red_black_list["listed_date"]).dt.tz_localize("UTC") <= at]
    for kind in ("red", "black"):
        numbers = listed.loc[listed["list_type"] == kind, "msisdn"].astype(str)
        out[f"{kind}_list_flag"] = pd.Series(out["msisdn"]).isin(numbers).to_numpy(np.int64)

    out["monthly_consumption"] = cur["total_fee"]
    bills_3m = _window(history, "has_bill", 3)
    out["arpu_3m"] = np.divide(
        _window(history, "total_fee", 3), bills_3m, out=np.zeros(n), where=bills_3m > 0
    )
    if prior:
        # A line's first bill (a partial month, pro rata) is no baseline for a change.
        since = (at.year * 12 + at.month - activation.dt.year * 12 - activation.dt.month).to_numpy(float)
        first = [since == len(prior) - i for i in range(len(prior))]
        prior_fee = np.sum([h["total_fee"] * ~f for h, f in zip(prior, first)], axis=0)
        prior_n = np.sum([h["has_bill"] * ~f for h, f in zip(prior, first)], axis=0)
        prior_mean = np.divide(prior_fee, prior_n, out=np.zeros(n), where=prior_n > 0)
        change = np.divide(cur["total_fee"], prior_mean, out=np.ones(n), where=prior_mean > 0) - 1
    else:
        change = np.zeros(n)
    out["bill_change_ratio"] = change
    out["arrears_months_12m"] = _window(history, "arrears_flag", 12).astype(np.int64)
    out["arrears_amount"] = cur["arrears_amount"]
    out["arrears_suspensions_12m"] = _window(history, "suspended", 12).astype(np.int64)

    out["complaint_count_3m"] = _window(history, "complaints", 3).astype(np.int64)
    out["complaint_count_12m"] = _window(history, "complaints", 12).astype(np.int64)
    out["billing_complaint_count_12m"] = _window(history, "billing_complaints", 12).astype(np.int64)
    out["escalated_complaint_count_12m"] = _window(history, "escalated", 12).astype(np.int64)
    last = np.max([h["last_complaint_epoch"] for h in history], axis=0)
    days = (at.timestamp() - last) / 86_400.0
    out["days_since_last_complaint"] = np.where(np.isfinite(days), np.floor(days), np.nan)
    sat_n = _window(history, "satisfaction_n", 12)
    out["complaint_satisfaction"] = np.divide(
        _window(history, "satisfaction_sum", 12), sat_n, out=np.full(n, np.nan), where=sat_n > 0
    )
    out["refund_count_12m"] = _window(history, "refunds", 12).astype(np.int64)
    out["refund_amount_12m"] = _window(history, "refund_amount", 12)
    out["double_refund_count_12m"] = _window(history, "double_refunds", 12).astype(np.int64)
    out["gift_count_12m"] = _window(history, "gifts", 12).astype(np.int64)
    out["gift_amount_12m"] = _window(history, "gift_amount", 12)

    out["voice_minutes"] = cur["voice_minutes"]
    out["data_mb"] = cur["data_mb"]
    out["sms_count"] = cur["sms_count"].astype(np.int64)
    out["roaming_minutes_3m"] = _window(history, "roaming_minutes", 3)
    out["monternet_port_count"] = cur["monternet_ports"].astype(np.int64)
    out["business_dependence"] = cur["services_used"].astype(np.int64)
    out["influence"] = cur["distinct_callees"].astype(np.int64)

    out["billing_inquiry_count_3m"] = _window(history, "inquiries", 3).astype(np.int64)
    for c in CHANNELS:
        out[f"contacts_{c}_3m"] = _window(history, f"contacts_{c}", 3).astype(np.int64)
    answered = _window(history, "outbound_answered", 12)
    out["outbound_response_rate_12m"] = np.divide(
        _window(history, "outbound_responded", 12),
        answered,
        out=np.full(n, np.nan),
        where=answered > 0,
    )
    return pd.DataFrame(
        {"msisdn": out["msisdn"][active], "event_timestamp": at, **{k: out[k][active] for k in lib.BY_ID}}
    )


def split_by_subject(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One frame per feature view: the entity, the timestamp and that subject's indicators."""
    return {
        subject: frame[["msisdn", "event_timestamp", *(i.id for i in lib.by_subject(subject))]]
        for subject in lib.SUBJECTS
    }


def offline_views(frame: pd.DataFrame, created: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """A snapshot's offline files as written: one frame per feature view, stamped ``created``."""
    views = {}
    for subject, view in split_by_subject(frame).items():
        # Microsecond timestamps: DuckDB cannot cast nanosecond ones with a time zone.
        views[subject] = view.assign(
            event_timestamp=view["event_timestamp"].astype("datetime64[us, UTC]"),
            created_timestamp=pd.Series(created, index=view.index).astype("datetime64[us, UTC]"),
        )
    return views


def offline_file(offline_dir: Path, subject: str, province: str, month: str) -> Path:
    """An indicator snapshot file: ``<subject>/<province>_<month>.parquet`` (the one naming rule)."""
    return Path(offline_dir) / subject / f"{province}_{month}.parquet"


def offline_snapshots(
    offline_dir: Path, subject: str = "profile", province: str = "*", month: str = "*"
) -> list[tuple[str, str]]:
    """(province, month) of every snapshot file of ``subject``, optionally of one province or month."""
    files = sorted(
        (Path(offline_dir) / subject).glob(offline_file(offline_dir, subject, province, month).name)
    )
    return [tuple(f.stem.split("_", 1)) for f in files]


def snapshot_parts(offline_dir: Path, month: str) -> Iterator[tuple[str, int, pd.DataFrame]]:
    """Every province's snapshot of ``month``, its subjects joined on the phone number, a row
    group at a time when every subject's file has the same row groups (the Spark build writes
    one bucket of customers per row group, the same customers in every subject), else a file
    at a time: (province, the part's first row in the province's files, the part). Memory: a
    part, never every province at once."""
    import pyarrow.parquet as pq

    for province, _ in offline_snapshots(offline_dir, "profile", month=month):
        paths = [offline_file(offline_dir, s, province, month) for s in lib.SUBJECTS]
        files = [pq.ParquetFile(p) for p in paths if p.exists()]
        sizes = {tuple(f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)) for f in files}
        groups = [[g] for g in range(files[0].num_row_groups)] if len(sizes) == 1 else [None]
        first = 0
        for group in groups:
            frames = [
                (f.read() if group is None else f.read_row_groups(group))
                .to_pandas()
                .drop(columns=["event_timestamp", "created_timestamp"])
                .set_index("msisdn")
                for f in files
            ]
            part = pd.concat(frames, axis=1).reset_index()
            yield province, first, part
            first += len(part)


def read_raw_month(raw_dir: Path, province: str, month: str) -> dict[str, pd.DataFrame]:
    """All monthly raw partitions of one province and month."""
    return {name: read_partition(raw_dir, name, province, month) for name, t in TABLES.items() if t.monthly}


def snapshots_of(
    subscribers: pd.DataFrame,
    red_black: pd.DataFrame,
    history_months: Sequence[str],
    months: Sequence[str],
    read_month: Callable[[str], Mapping[str, pd.DataFrame]],
) -> Iterator[tuple[str, pd.DataFrame]]:
    """The customers' indicators at each of ``months``, oldest first: each month's raw tables
    (``read_month``) aggregated once, the windows reaching back into ``history_months``. The
    customers are a province's (``build_indicators``) or a bucket of them (the Spark build): every
    indicator is one customer's, so either gives each customer the same values."""
    index = pd.Index(subscribers["msisdn"].astype(str))
    history = [aggregate_month(index, read_month(m)) for m in history_months]
    for month in months:
        history.append(aggregate_month(index, read_month(month)))
        history = history[-WINDOW_MONTHS:]
        yield month, indicators_at(subscribers, red_black, history, month)


def build_indicators(
    raw_dir: Path,
    offline_dir: Path,
    provinces: Sequence[str],
    months: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Build every indicator for every province and month; returns rows written.

    Each output file is written atomically, so a failed build leaves the previous
    snapshot of that file intact; the temporary files a killed run left in the raw and
    offline directories are removed first.
    """
    for stale in remove_stale_temporaries([raw_dir, offline_dir]):
        log.info("removed %s, left by an interrupted run", stale)
    rows = 0
    for province in provinces:
        subscribers = read_partition(raw_dir, "subscribers", province)
        red_black = read_partition(raw_dir, "red_black_list", province)
        # The windows of the first month reach back into the warehouse's earlier months.
        before = history_before(raw_dir, province, months[0]) if months else []
        snapshots = snapshots_of(
            subscribers, red_black, before, months, partial(read_raw_month, raw_dir, province)
        )
        for month, frame in snapshots:
            for subject, view in offline_views(frame, pd.Timestamp.now(tz="UTC")).items():
                atomic_write_parquet(view, offline_file(offline_dir, subject, province, month))
            rows += len(frame)
            if progress:
                progress(1)
    return rows


def warehouse_months(raw_dir: Path, province: str) -> list[str]:
    """Months with a bills partition for the province, oldest first."""
    base = Path(raw_dir) / "monthly_bills" / f"province={province}"
    return sorted(p.name.split("=", 1)[1] for p in base.glob("month=*"))


def available_months(raw_dir: Path, province: str) -> list[str]:
    """The months to build snapshots for, oldest first: the warehouse's months from the first
    whose windows it can fill (the 11 months before it are there too); the months before that
    are history the windows read, not snapshots. A warehouse with no such month (a delivery of
    under a year) gives every month, each with the history there is."""
    months = warehouse_months(raw_dir, province)
    have = set(months)
    for i, month in enumerate(months):
        if all(str(pd.Period(month, "M") - k) in have for k in range(1, WINDOW_MONTHS)):
            return months[i:]
    return months


def history_before(raw_dir: Path, province: str, month: str) -> list[str]:
    """The consecutive months just before ``month`` (up to 11, oldest first) the warehouse holds:
    what the windows of ``month``'s snapshot read besides ``month`` itself."""
    have = set(warehouse_months(raw_dir, province))
    before = []
    for k in range(1, WINDOW_MONTHS):
        earlier = str(pd.Period(month, "M") - k)
        if earlier not in have:
            break
        before.append(earlier)
    return before[::-1]


def available_provinces(raw_dir: Path) -> list[str]:
    base = Path(raw_dir) / "subscribers"
    return sorted(p.name.split("=", 1)[1] for p in base.glob("province=*"))


__all__ = [
    "aggregate_month",
    "indicators_at",
    "split_by_subject",
    "offline_views",
    "build_indicators",
    "available_months",
    "warehouse_months",
    "history_before",
    "available_provinces",
    "WINDOW_MONTHS",
    "month_list",
]
