"""Feedback from the CRM: what happened after a score was used, kept durably.

The CRM reports five kinds of event (the 2009 spec's 工单处理信息/反馈结果, the campaign
flow's 客户响应记录, offers taken (业务办理, contacted or not), do-not-disturb requests and
red/black list changes), over HTTP (``POST /feedback``) or as nightly files (``telcoml feedback
ingest``). Every event carries the CRM's ``event_id``: an event sent twice is stored once and the
second time answered ``duplicate`` (``conflict``, and not stored, when the id comes back with other
content). A request or file is validated whole before anything is stored, and stored in one
transaction, so it is all in or all out. ``features.feedback_apply`` turns stored events into rows
of the raw tables.

The store is SQLAlchemy over SQLite in the work directory by default, PostgreSQL in
production (``TELCOML_FEEDBACK_STORE_URL``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from core.errors import TelcomlError
from core.indicators import CHANNELS, PROVINCES
from core.msisdn import MSISDN_REGEX, mask_msisdn

#: Most events in one HTTP request.
MAX_EVENTS = 500
ALL_PROVINCES = "*"

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Msisdn = Annotated[str, StringConstraints(pattern=rf"^{MSISDN_REGEX}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Province = Literal[PROVINCES]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
# times and dates arrive as ISO text in JSON and CSV: the only fields parsed leniently
Time = Annotated[datetime, Field(strict=False)]
Day = Annotated[date, Field(strict=False)]


class FeedbackError(TelcomlError):
    """A feedback event was refused; ``where`` names the item (index, or file and line) and field."""

    def __init__(self, where: str, field: str, message: str, *, forbidden: bool = False):
        self.where, self.field, self.forbidden = where, field, forbidden
        super().__init__(f"{where}, field {field!r}: {message}; nothing of it was stored")


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    event_id: Identifier
    province: Province | None = None
    time: Time

    @field_validator("time")
    @classmethod
    def _utc_naive(cls, value: datetime) -> datetime:
        # raw tables hold naive UTC times (build localizes them to UTC)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if not datetime(2000, 1, 1) <= value <= datetime(2100, 1, 1):
            raise ValueError("time must be between 2000 and 2100")
        return value.replace(microsecond=0)


class ComplaintOutcome(_Event):
    """A handled complaint work order (工单处理信息): verification, refund, small gift, time taken."""

    type: Literal["complaint_outcome"]
    work_order_id: Identifier
    msisdn: Msisdn
    verified: Literal["founded", "unfounded"]
    refunded_amount: float = Field(0.0, ge=0, le=100_000)
    gift_amount: float = Field(0.0, ge=0, le=500)
    handling_hours: float = Field(..., ge=0, le=24 * 90)
    satisfaction: int | None = Field(None, ge=1, le=5)


class CampaignContact(_Event):
    """One touch of a campaign wave and the customer's response (客户响应记录)."""

    type: Literal["campaign_contact"]
    campaign_id: Identifier
    wave: int = Field(..., ge=1, le=50)
    msisdn: Msisdn
    channel: Channel
    outcome: Literal["reached", "accepted", "declined", "complained", "opted_out"]


class OfferTaken(_Event):
    """A customer took a campaign's offer (业务办理), reported by the order system whether or not the
    customer was contacted: the control group's take-up is what a campaign's uplift is measured
    against (``serving.campaign_report``)."""

    type: Literal["offer_taken"]
    campaign_id: Identifier
    msisdn: Msisdn
    channel: Channel | None = None


class DoNotDisturb(_Event):
    """A customer's do-not-disturb request (免打扰): until a date or for good, one channel or all."""

    type: Literal["do_not_disturb"]
    msisdn: Msisdn
    until: Day | None = None
    channel: Channel | None = None


class ListChange(_Event):
    """A red or black list entry added or removed (红/黑名单)."""

    type: Literal["list_change"]
    msisdn: Msisdn
    list_type: Literal["red", "black"]
    action: Literal["add", "remove"]
    reason: Text | None = None


Event = Annotated[
    ComplaintOutcome | CampaignContact | OfferTaken | DoNotDisturb | ListChange, Field(discriminator="type")
]
EVENT_TYPES = ("complaint_outcome", "campaign_contact", "offer_taken", "do_not_disturb", "list_change")
#: What storing an event answers: new, the same event again, or an id already stored with other content.
STATUSES = ("stored", "duplicate", "conflict")
#: The events a campaign's report reads (``FeedbackStore.campaign_events``).
CAMPAIGN_EVENT_TYPES = ("campaign_contact", "offer_taken")
_ADAPTER: TypeAdapter = TypeAdapter(Event)


def _first_error(err: ValidationError) -> tuple[str, str]:
    first = err.errors(include_url=False, include_input=False)[0]
    loc = [str(p) for p in first["loc"]]
    # a discriminated union puts the event type first in the location
    if len(loc) > 1 and loc[0] in EVENT_TYPES:
        loc = loc[1:]
    return ".".join(loc) or "type", mask_msisdn(first["msg"])


def parse_event(item: object, where: str, scope: str = ALL_PROVINCES, *, lenient: bool = False) -> _Event:
    """One event, validated, with its province (the key's when it names none); FeedbackError naming
    ``where`` and the field otherwise. ``lenient`` parses numbers from text (CSV files)."""
    if not isinstance(item, dict):
        raise FeedbackError(where, "type", "an event is a JSON object")
    try:
        event = _ADAPTER.validate_python(item, strict=False if lenient else None)
    except ValidationError as err:
        field, message = _first_error(err)
        raise FeedbackError(where, field, message) from None
    if event.province is None:
        if scope == ALL_PROVINCES:
            raise FeedbackError(where, "province", "required with a group key or in a file")
        return event.model_copy(update={"province": scope})
    if scope != ALL_PROVINCES and event.province != scope:
        raise FeedbackError(
            where,
            "province",
            f"a {scope} key may only send {scope} events, not {event.province}",
            forbidden=True,
        )
    return event


def parse_events(items: Sequence[object], scope: str = ALL_PROVINCES) -> list[_Event]:
    """A whole request's events, or FeedbackError for the first bad one (``event <index>``)."""
    return [parse_event(item, f"event {i}", scope) for i, item in enumerate(items)]


# --------------------------------------------------------------------------- the store

_METADATA = sa.MetaData()
EVENTS = sa.Table(
    "feedback_events",
    _METADATA,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("province", sa.String(2), nullable=False, index=True),
    sa.Column("event_time", sa.DateTime, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    #: when the event's rows reached the raw tables (``features.feedback_apply``); empty: pending
    sa.Column("applied_at", sa.DateTime, nullable=True, index=True),
)
_ENGINES: dict[str, sa.Engine] = {}


def _engine(url: str) -> sa.Engine:
    if url not in _ENGINES:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, pool_pre_ping=True)
        _METADATA.create_all(engine)
        _ENGINES[url] = engine
    return _ENGINES[url]


class FeedbackStore:
    """The durable store of feedback events, one row per ``event_id``."""

    def __init__(self, url: str):
        self.engine = _engine(url)

    def add(self, events: Sequence[_Event]) -> list[str]:
        """Store the events in one transaction; for each, in order, ``stored``, ``duplicate`` (the same
        event again) or ``conflict`` (an id already stored with other content: not stored, the first
        stays)."""
        for attempt in range(3):
            try:
                return self._add(events)
            except sa.exc.IntegrityError:  # a concurrent request stored one of these ids first
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _add(self, events: Sequence[_Event]) -> list[str]:
        ids = [e.event_id for e in events]
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            known: dict[str, str] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                query = sa.select(EVENTS.c.event_id, EVENTS.c.payload).where(EVENTS.c.event_id.in_(chunk))
                known.update((row.event_id, row.payload) for row in conn.execute(query))
            statuses, rows = [], []
            for event in events:
                payload = event.model_dump_json()
                if event.event_id in known:
                    statuses.append("duplicate" if known[event.event_id] == payload else "conflict")
                    continue
                known[event.event_id] = payload
                statuses.append("stored")
                rows.append(
                    {
                        "event_id": event.event_id,
                        "event_type": event.type,
                        "province": event.province,
                        "event_time": event.time,
                        "payload": payload,
                        "received_at": now,
                        "applied_at": None,
                    }
                )
            if rows:
                conn.execute(sa.insert(EVENTS), rows)
        return statuses

    def pending(self) -> list[_Event]:
        """Events not yet applied to the raw tables, oldest first."""
        query = sa.select(EVENTS.c.payload).where(EVENTS.c.applied_at.is_(None)).order_by(EVENTS.c.event_time)
        with self.engine.connect() as conn:
            return [_ADAPTER.validate_json(p) for p in conn.execute(query).scalars()]

    def campaign_events(self, campaign_id: str, province: str) -> pd.DataFrame:
        """A campaign's contacts and offers taken in one province, one row per event (the events'
        fields; ``type`` says which), oldest first; empty with those columns when none came back."""
        query = (
            sa.select(EVENTS.c.payload)
            .where(EVENTS.c.event_type.in_(CAMPAIGN_EVENT_TYPES), EVENTS.c.province == province)
            .order_by(EVENTS.c.event_time)
        )
        rows = []
        with self.engine.connect() as conn:
            for payload in conn.execute(query).scalars():
                item = json.loads(payload)
                if item.get("campaign_id") == campaign_id:
                    rows.append(item)
        columns = ["event_id", "type", "time", "msisdn", "wave", "channel", "outcome", "campaign_id"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["time"] = pd.to_datetime(frame["time"])
        return frame

    def applied(self, provinces: Iterable[str]) -> list[_Event]:
        """Events of these provinces already applied to the raw tables."""
        query = sa.select(EVENTS.c.payload).where(
            EVENTS.c.applied_at.is_not(None), EVENTS.c.province.in_(list(provinces))
        )
        with self.engine.connect() as conn:
            return [_ADAPTER.validate_json(p) for p in conn.execute(query).scalars()]

    def reopen(self, event_ids: Iterable[str]) -> None:
        """Mark events pending again (their rows are to be written anew)."""
        self._set_applied(event_ids, None)

    def mark_applied(self, event_ids: Iterable[str]) -> None:
        self._set_applied(event_ids, datetime.now(UTC).replace(tzinfo=None))

    def _set_applied(self, event_ids: Iterable[str], when: datetime | None) -> None:
        ids = list(event_ids)
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(sa.update(EVENTS).where(EVENTS.c.event_id.in_(chunk)).values(applied_at=when))

    def status(self) -> list[dict]:
        """Per event type and province: events, pending ones, the last event's time."""
        pending = sa.func.sum(sa.case((EVENTS.c.applied_at.is_(None), 1), else_=0))
        query = (
            sa.select(
                EVENTS.c.event_type,
                EVENTS.c.province,
                sa.func.count().label("events"),
                pending.label("pending"),
                sa.func.max(EVENTS.c.event_time).label("last_event"),
            )
            .group_by(EVENTS.c.event_type, EVENTS.c.province)
            .order_by(EVENTS.c.event_type, EVENTS.c.province)
        )
        with self.engine.connect() as conn:
            return [
                {**row._asdict(), "pending": int(row.pending), "last_event": str(row.last_event)}
                for row in conn.execute(query)
            ]


# --------------------------------------------------------------------------- files


def read_feedback_file(path: Path) -> list[_Event]:
    """Every event of a CSV (header: the fields; empty cells are absent) or JSONL file, or
    FeedbackError naming the file, line and field."""
    path = Path(path)
    events = []
    with path.open(encoding="utf-8", newline="") as fh:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(fh)
            for row in reader:
                line = f"{path}, line {reader.line_num}"
                if None in row:
                    raise FeedbackError(line, "", "more cells than the header has columns")
                fields = {k: v for k, v in row.items() if v not in ("", None)}
                events.append(parse_event(fields, line, lenient=True))
        else:
            for number, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    item = json.loads(text)
                except json.JSONDecodeError as err:
                    raise FeedbackError(f"{path}, line {number}", "", f"not JSON ({err.msg})") from None
                events.append(parse_event(item, f"{path}, line {number}"))
    return events


def ingest_feedback_files(store_url: str, paths: Sequence[Path]) -> list[dict]:
    """Store each file's events, each file in one transaction (a bad line: nothing of that file).

    Returns per file: stored and duplicate counts. Files before the bad one stay stored.
    """
    store = FeedbackStore(store_url)
    results = []
    for path in paths:
        statuses = store.add(read_feedback_file(Path(path)))
        results.append({"file": str(path), **{s: statuses.count(s) for s in STATUSES}})
    return results


__all__ = [
    "EVENT_TYPES",
    "MAX_EVENTS",
    "CampaignContact",
    "ComplaintOutcome",
    "DoNotDisturb",
    "FeedbackError",
    "FeedbackStore",
    "ListChange",
    "OfferTaken",
    "ingest_feedback_files",
    "parse_events",
    "read_feedback_file",
]
