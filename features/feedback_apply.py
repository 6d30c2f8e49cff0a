"""Stored feedback into the raw tables the next ``telcoml build`` reads, through the quality gate.

What each event becomes:

* a complaint outcome verified unfounded (核实不实) -> ``credit_events`` (``complaint_unfounded``),
  a small gift given in handling -> ``small_gifts`` (``complaint_goodwill``): credit evidence;
* a campaign contact -> ``channel_contacts`` (``campaign_response``: accepted is True, declined,
  complained or opted out False, reached without an answer empty): the channel indicators;
* an offer taken -> nothing: it measures its campaign (``serving.campaign_report``);
* a list change -> ``red_black_list`` (an entry added, or removed);
* a do-not-disturb request -> ``do_not_disturb`` (one row per customer, the latest request).

Every changed partition is rebuilt in memory and checked with the gate's ``check_frame``; one
reject and nothing is written. Then each partition is replaced atomically and the events are
marked applied. Rows are keyed (a credit event by the CRM's ``event_id``, a contact by number,
time and channel, a list entry by number and list), so applying the same events again (after a
crash between the writes and the marking) adds no row. Events of a month (or a province) the
warehouse does not hold yet stay pending: that month's delivery would replace a partition written
before it. A later delivery of a month that already holds applied feedback (``telcoml ingest`` of a
corrected file) reopens those events first (``reopen_for_delivery``) and applies them again after
the files are replaced, so the redelivery drops none of them. Applying runs one at a time per work
directory (a file lock; a second run waits).
"""

from __future__ import annotations

import fcntl
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import DataQualityError
from core.io import atomic_write_parquet
from core.settings import Settings
from features.build import warehouse_months
from features.feedback import (
    CampaignContact,
    ComplaintOutcome,
    DoNotDisturb,
    FeedbackStore,
    ListChange,
    OfferTaken,
)
from features.quality import REJECT, check_frame
from features.schemas import ARROW_TYPES, TABLES, partition_path

_RESPONSE = {"accepted": True, "declined": False, "complained": False, "opted_out": False, "reached": None}


@dataclass
class AppliedFeedback:
    """What ``apply_feedback`` did: events applied, events waiting for their month, rows per table."""

    applied: int = 0
    waiting: int = 0
    rows: dict[str, int] = field(default_factory=dict)


def rows_of(event) -> list[tuple[str, dict | None, tuple]]:
    """The raw rows an event becomes: (table, row, key); row None removes the keyed row."""
    at = pd.Timestamp(event.time)
    if isinstance(event, ComplaintOutcome):
        out = []
        if event.verified == "unfounded":
            row = {"event_id": f"FB-{event.event_id}", "msisdn": event.msisdn, "event_time": at}
            out.append(("credit_events", {**row, "event_type": "complaint_unfounded", "amount": None}, ()))
        if event.gift_amount > 0:
            gift = {"gift_id": f"FB-{event.event_id}", "msisdn": event.msisdn, "gift_time": at}
            out.append(
                ("small_gifts", {**gift, "amount": event.gift_amount, "reason": "complaint_goodwill"}, ())
            )
        return out
    if isinstance(event, CampaignContact):
        response = _RESPONSE[event.outcome]
        row = {
            "msisdn": event.msisdn,
            "contact_time": at,
            "channel": event.channel,
            "campaign_response": response,
        }
        return [("channel_contacts", row, ())]
    if isinstance(event, OfferTaken):  # measures a campaign (serving.campaign_report); no raw row
        return []
    if isinstance(event, ListChange):
        key = (event.msisdn, event.list_type)
        if event.action == "remove":
            return [("red_black_list", None, key)]
        row = {
            "msisdn": event.msisdn,
            "list_type": event.list_type,
            "listed_date": at.date(),
            "reason": event.reason,
        }
        return [("red_black_list", row, key)]
    if isinstance(event, DoNotDisturb):
        row = {"msisdn": event.msisdn, "since": at, "until": event.until, "channel": event.channel}
        return [("do_not_disturb", row, (event.msisdn,))]
    raise TypeError(f"no raw rows for {type(event).__name__}")


def _read(path: Path, table: str) -> tuple[pd.DataFrame, pa.Schema]:
    if path.exists():
        stored = pq.read_table(path)
        frame = stored.to_pandas()
        for col in frame.columns:  # dictionary-encoded numbers come back categorical
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(object)
        return frame, stored.schema.remove_metadata()
    spec = TABLES[table]
    schema = pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in spec.columns])
    return pd.DataFrame({c: pd.Series(dtype=object) for c in spec.column_names}), schema


def _changed(frame: pd.DataFrame, table: str, changes: list[tuple[dict | None, tuple]]) -> pd.DataFrame:
    """The partition with the changes made: keyed rows replaced or removed, events added once."""
    key = list(TABLES[table].key)
    added = pd.DataFrame([row for row, _ in changes if row is not None], columns=frame.columns)
    removed = [k for row, k in changes if row is None]
    out = pd.concat([frame.astype(object), added.astype(object)], ignore_index=True)
    out = out.drop_duplicates(subset=key, keep="last")  # the latest list entry or request wins
    if removed:
        keys = pd.MultiIndex.from_frame(out[key].astype(str))
        out = out[~keys.isin(pd.MultiIndex.from_tuples(removed, names=key))]
    return out.reset_index(drop=True)


def _partition(event, table: str) -> tuple[str, str, str | None]:
    return (table, event.province, event.time.strftime("%Y-%m") if TABLES[table].monthly else None)


def reopen_for_delivery(settings: Settings, partitions: Iterable[tuple[str, str, str | None]]) -> int:
    """Before a delivery replaces raw partitions (table, province, month or None): the applied
    events with rows in them are marked pending again, so the next ``apply_feedback`` writes their
    rows into the new files (rows are keyed: applying twice adds nothing). Returns how many."""
    replaced = set(partitions)
    store = FeedbackStore(settings.feedback_store)
    reopen = [
        event.event_id
        for event in store.applied({province for _, province, _ in replaced})
        if any(_partition(event, table) in replaced for table, _, _ in rows_of(event))
    ]
    store.reopen(reopen)
    return len(reopen)


@contextmanager
def _one_at_a_time(settings: Settings):
    """An exclusive lock of the work directory's raw tables: a second apply waits for the first."""
    settings.workdir.mkdir(parents=True, exist_ok=True)
    with open(settings.workdir / ".feedback-apply.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apply_feedback(settings: Settings) -> AppliedFeedback:
    """Apply every pending feedback event to the raw tables (see the module's text); one apply at
    a time per work directory (a second waits).

    DataQualityError, and nothing written or marked, when a rebuilt partition fails the gate.
    """
    with _one_at_a_time(settings):
        return _apply(settings)


def _apply(settings: Settings) -> AppliedFeedback:
    store = FeedbackStore(settings.feedback_store)
    raw = settings.raw_dir
    result = AppliedFeedback()
    months: dict[str, set[str]] = {}
    changes: dict[tuple[str, str, str | None], list[tuple[dict | None, tuple]]] = defaultdict(list)
    applied = []
    for event in store.pending():
        province = event.province
        if province not in months:
            months[province] = set(warehouse_months(raw, province))
        rows = rows_of(event)
        month = event.time.strftime("%Y-%m")
        # a province the warehouse has no month of yet: even its lists wait for its first delivery
        monthly = any(TABLES[t].monthly for t, _, _ in rows)
        if not months[province] or (monthly and month not in months[province]):
            result.waiting += 1
            continue
        for table, row, key in rows:
            changes[_partition(event, table)].append((row, key))
        applied.append(event.event_id)

    staged, problems = [], []
    for (table, province, month), made in changes.items():
        path = partition_path(raw, table, province, month)
        frame, schema = _read(path, table)
        arrow = pa.Table.from_pandas(_changed(frame, table, made), preserve_index=False).cast(
            schema, safe=False
        )
        label = f"feedback -> {table} {province} {month or ''}".strip()
        found = check_frame(arrow.to_pandas(date_as_object=False), table, label, month, province=province)
        problems += [p for p in found if p.severity == REJECT]
        staged.append((arrow, path))
        result.rows[table] = result.rows.get(table, 0) + sum(row is not None for row, _ in made)
    if problems:
        raise DataQualityError(problems)
    for arrow, path in staged:
        atomic_write_parquet(arrow, path)
    store.mark_applied(applied)
    result.applied = len(applied)
    return result


__all__ = ["AppliedFeedback", "apply_feedback", "reopen_for_delivery", "rows_of"]
