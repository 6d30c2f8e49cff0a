"""Schemas of the raw operational tables, as the operator's warehouse holds them.

Declared once; the generator writes to them and the quality gate checks against them.
Monthly tables (the imported credit events and small gifts too) are partitioned
``<table>/province=XX/month=YYYY-MM/part-0.parquet``;
master tables (subscribers, red/black lists) ``<table>/province=XX/part-0.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from core.errors import NotReadyError
from core.indicators import CHANNELS, PROVINCES

#: The Arrow type a column of each declared kind is written as (a column with no value yet included).
ARROW_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("ns"),
    "date": pa.date32(),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str", "int", "float", "bool", "timestamp", "date"
    nullable: bool = False
    codes: tuple[str, ...] | None = None
    valid_range: tuple[float, float] | None = None
    #: Largest tolerated share of empty values before completeness fails.
    max_null_share: float = 0.0


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    monthly: bool
    time_column: str | None = None
    description: str = ""
    #: Rows come only from the CRM's feedback (``features.feedback_apply``): a province without
    #: any has no partition, which is not a missing delivery.
    fed_back: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


MSISDN = Column("msisdn", "str")
PROVINCE_CODES = PROVINCES
#: Credit evidence over the months after a snapshot (``credit_events.event_type``): a complaint
#: verified unfounded (投诉核实不实), a refund reversed (退费冲正/追回), a double refund found
#: (双返), arrears written off (欠费核销/坏账), a black-list entry (黑名单, the red/black list's own).
CREDIT_EVENT_TYPES = (
    "complaint_unfounded",
    "refund_reversed",
    "double_refund",
    "arrears_written_off",
    "black_listed",
)
#: Why a small gift (小额赠送) was given: goodwill in complaint handling, or customer care.
GIFT_REASONS = ("complaint_goodwill", "customer_care")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "subscribers",
            (
                MSISDN,
                Column("province", "str"),
                Column("city", "str", nullable=True, max_null_share=0.01),
                Column(
                    "customer_category",
                    "str",
                    codes=("individual", "group_member", "vip_silver", "vip_gold", "vip_diamond"),
                ),
                Column("brand", "str", codes=("gotone", "mzone", "easyown")),
                Column("payment_method", "str", codes=("prepaid", "postpaid_cash", "bank_debit")),
                Column("activation_date", "date"),
                Column("number_level", "int", valid_range=(0, 4)),
                Column(
                    "terminal_class",
                    "str",
                    nullable=True,
                    max_null_share=0.10,
                    codes=("feature_phone", "smartphone_4g", "smartphone_5g"),
                ),
                Column("status", "str", codes=("active", "closed")),
                Column("close_date", "date", nullable=True, max_null_share=1.0),
                Column("ported_in", "bool"),
            ),
            key=("msisdn",),
            monthly=False,
            description="subscriber master (用户资料), one row per phone number; ported_in: the "
            "number came from another operator (携号转网)",
        ),
        Table(
            "monthly_bills",
            (
                MSISDN,
                Column("bill_month", "str"),
                Column("total_fee", "float", valid_range=(0, 100_000)),
                Column("plan_fee", "float", valid_range=(0, 100_000)),
                Column("voice_fee", "float", valid_range=(0, 100_000)),
                Column("data_fee", "float", valid_range=(0, 100_000)),
                Column("sms_fee", "float", valid_range=(0, 100_000)),
                Column("vas_fee", "float", nullable=True, valid_range=(0, 100_000), max_null_share=0.02),
                Column("roaming_fee", "float", valid_range=(0, 100_000)),
            ),
            key=("msisdn", "bill_month"),
            monthly=True,
            time_column="bill_month",
            description="monthly bills (账单), one row per number per month",
        ),
        Table(
            "payments",
            (
                MSISDN,
                Column("bill_month", "str"),
                Column("amount_due", "float", valid_range=(0, 100_000)),
                Column("amount_paid", "float", valid_range=(0, 100_000)),
                Column("payment_date", "date", nullable=True, max_null_share=0.5),
                Column("arrears_amount", "float", valid_range=(0, 100_000)),
                Column("suspended_for_arrears", "bool"),
            ),
            key=("msisdn", "bill_month"),
            monthly=True,
            time_column="bill_month",
            description="payments and arrears (缴费/欠费) per bill",
        ),
        Table(
            "usage",
            (
                MSISDN,
                Column("month", "str"),
                Column("voice_minutes", "float", valid_range=(0, 50_000)),
                Column("data_mb", "float", nullable=True, valid_range=(0, 5_000_000), max_null_share=0.03),
                Column("sms_count", "int", valid_range=(0, 100_000)),
                Column("mms_count", "int", valid_range=(0, 100_000)),
                Column("roaming_minutes", "float", valid_range=(0, 50_000)),
                Column("boundary_roaming_minutes", "float", valid_range=(0, 50_000)),
                Column("monternet_ports", "int", valid_range=(0, 200)),
                Column("ringback_tone", "bool"),
                Column("distinct_callees", "int", valid_range=(0, 100_000)),
            ),
            key=("msisdn", "month"),
            monthly=True,
            time_column="month",
            description="monthly usage (语音、GPRS、短彩信、漫游、梦网)",
        ),
        Table(
            "complaints",
            (
                Column("complaint_id", "str"),
                MSISDN,
                Column("complaint_time", "timestamp"),
                Column("category", "str", codes=("billing", "network", "service", "value_added", "other")),
                Column("outcome", "str", codes=("resolved", "refunded", "rejected", "escalated")),
                Column("satisfaction", "float", nullable=True, valid_range=(1, 5), max_null_share=0.8),
            ),
            key=("complaint_id",),
            monthly=True,
            time_column="complaint_time",
            description="complaint work orders (投诉工单) with outcome and survey",
        ),
        Table(
            "refunds",
            (
                Column("refund_id", "str"),
                MSISDN,
                Column("refund_time", "timestamp"),
                Column("amount", "float", valid_range=(0, 100_000)),
                Column("is_double_refund", "bool"),
                Column("complaint_id", "str", nullable=True, max_null_share=0.2),
            ),
            key=("refund_id",),
            monthly=True,
            time_column="refund_time",
            description="refunds (退费), double refunds (双返) flagged",
        ),
        Table(
            "billing_inquiries",
            (
                MSISDN,
                Column("inquiry_time", "timestamp"),
                Column("channel", "str", codes=("ivr", "sms", "app", "agent")),
            ),
            key=("msisdn", "inquiry_time", "channel"),
            monthly=True,
            time_column="inquiry_time",
            description="billing inquiries (话费查询)",
        ),
        Table(
            "channel_contacts",
            (
                MSISDN,
                Column("contact_time", "timestamp"),
                Column("channel", "str", codes=CHANNELS),
                Column("campaign_response", "bool", nullable=True, max_null_share=1.0),
            ),
            key=("msisdn", "contact_time", "channel"),
            monthly=True,
            time_column="contact_time",
            description="contacts through every service channel; outbound ones record the response",
        ),
        Table(
            "red_black_list",
            (
                MSISDN,
                Column("list_type", "str", codes=("red", "black")),
                Column("listed_date", "date"),
                Column("reason", "str", nullable=True, max_null_share=1.0),
            ),
            key=("msisdn", "list_type"),
            monthly=False,
            description="externally imported red and black lists (红/黑名单)",
        ),
        Table(
            "credit_events",
            (
                Column("event_id", "str"),
                MSISDN,
                Column("event_time", "timestamp"),
                Column("event_type", "str", codes=CREDIT_EVENT_TYPES),
                # the money at stake; empty for an unfounded complaint or a listing
                Column("amount", "float", nullable=True, valid_range=(0, 100_000), max_null_share=1.0),
            ),
            key=("event_id",),
            monthly=True,
            time_column="event_time",
            description="credit evidence fed back by complaint handling, billing and the imported lists "
            "(核实不实、退费冲正、双返、欠费核销、黑名单): the credit outcome is defined from it "
            "(features.outcomes)",
        ),
        Table(
            "small_gifts",
            (
                Column("gift_id", "str"),
                MSISDN,
                Column("gift_time", "timestamp"),
                Column("amount", "float", valid_range=(0.01, 500)),
                Column("reason", "str", codes=GIFT_REASONS),
            ),
            key=("gift_id",),
            monthly=True,
            time_column="gift_time",
            description="imported small gifts (小额赠送), in yuan: goodwill in complaint handling, "
            "customer care",
        ),
        Table(
            "do_not_disturb",
            (
                MSISDN,
                Column("since", "timestamp"),
                Column("until", "date", nullable=True, max_null_share=1.0),
                Column("channel", "str", nullable=True, codes=CHANNELS, max_null_share=1.0),
            ),
            key=("msisdn",),
            monthly=False,
            description="customers who asked not to be contacted (免打扰), until a date or for good, "
            "on one channel or all; fed back by the CRM, read by the suppression rules",
            fed_back=True,
        ),
    )
}


def partition_path(root, table: str, province: str, month: str | None = None):
    """Where one partition of a raw table lives under ``root``."""
    base = Path(root) / table / f"province={province}"
    if TABLES[table].monthly:
        base = base / f"month={month}"
    return base / "part-0.parquet"


def read_partition(raw_dir: Path, table: str, province: str, month: str | None = None) -> pd.DataFrame:
    """One raw partition; a missing one is a clear error naming the path."""
    path = partition_path(raw_dir, table, province, month)
    if not path.exists():
        raise NotReadyError(f"raw partition missing: {path} (run `telcoml generate` or `telcoml ingest`)")
    return pd.read_parquet(path)
