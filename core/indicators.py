"""The indicator library: the single source of indicator names, labels and definitions.

Every stage reads this catalogue: the indicator build checks its output against it,
the Feast repository builds its feature views and services from it, the quality gate
checks its valid ranges, reason codes and documentation read its names.

``credit_role`` follows the group's 2009 complaint-credit specification: nine
mandatory indicators and six each province may choose.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from core.names import PROVINCES

Subject = Literal["profile", "billing_payment", "complaints_service", "usage", "channel_contacts"]
Kind = Literal["int", "float", "category"]
CreditRole = Literal["mandatory", "optional"]

#: The four evaluations (each a Feast feature contract), by the names every stage uses.
CREDIT_GRADE = "credit_grade"
SENSITIVITY = "sensitivity"
CHURN = "churn"
CHANNEL_PREFERENCE = "channel_preference"
EVALUATIONS = (CREDIT_GRADE, SENSITIVITY, CHURN, CHANNEL_PREFERENCE)
#: Version of every feature contract; a new one is a new FeatureService beside the old.
CONTRACT_VERSION = 1

#: The service channels of the documents, in the order campaigns list them.
CHANNELS = ("online_hall", "hotline_10086", "sms_hall", "business_hall", "outbound")
#: Each channel's name in the business's words, (Chinese, English): Chinese text names a channel
#: this way, never by its code.
CHANNEL_NAMES: dict[str, tuple[str, str]] = {
    "online_hall": ("网上营业厅/APP", "online hall and app"),
    "hotline_10086": ("10086热线", "10086 hotline"),
    "sms_hall": ("短信营业厅", "SMS hall"),
    "business_hall": ("营业厅", "business hall"),
    "outbound": ("外呼", "outbound call"),
}


@dataclass(frozen=True)
class Indicator:
    """One customer indicator, computed per customer per month-end snapshot."""

    id: str
    name_zh: str
    name_en: str
    subject: Subject
    sources: tuple[str, ...]
    formula: str
    unit: str
    kind: Kind
    valid_range: tuple[float, float] | None = None
    codes: tuple[str, ...] | None = None
    nullable: bool = False
    credit_role: CreditRole | None = None
    used_by: tuple[str, ...] = field(default_factory=tuple)
    #: Direction of effect on credit if the business knows it: +1 better, -1 worse.
    credit_direction: int = 0

    @property
    def definition(self) -> str:
        return f"{self.formula} (from {', '.join(self.sources)}; unit: {self.unit})"


_C, _S, _CH, _P = CREDIT_GRADE, SENSITIVITY, CHURN, CHANNEL_PREFERENCE

CATALOGUE: tuple[Indicator, ...] = (
    # --- profile (subscriber master, red/black lists) ---
    Indicator(
        "province",
        "省份",
        "Province",
        "profile",
        ("subscribers",),
        "province of the subscriber record; scopes API keys and provincial models, and tells the "
        "sensitivity and churn models where a province's customers react differently",
        "code",
        "category",
        codes=PROVINCES,
        used_by=(_S, _CH),
    ),
    Indicator(
        "customer_category",
        "客户类别",
        "Customer category",
        "profile",
        ("subscribers",),
        "customer_category of the subscriber record",
        "code",
        "category",
        codes=("individual", "group_member", "vip_silver", "vip_gold", "vip_diamond"),
        credit_role="mandatory",
        used_by=(_C, _CH, _P),
    ),
    Indicator(
        "brand",
        "品牌",
        "Brand",
        "profile",
        ("subscribers",),
        "brand of the subscriber record (GoTone, M-Zone, Easyown)",
        "code",
        "category",
        codes=("gotone", "mzone", "easyown"),
        credit_role="mandatory",
        used_by=EVALUATIONS,
    ),
    Indicator(
        "payment_method",
        "缴费方式",
        "Payment method",
        "profile",
        ("subscribers",),
        "payment_method of the subscriber record",
        "code",
        "category",
        codes=("prepaid", "postpaid_cash", "bank_debit"),
        credit_role="mandatory",
        used_by=EVALUATIONS,
    ),
    Indicator(
        "tenure_months",
        "在网时长",
        "Tenure",
        "profile",
        ("subscribers",),
        "whole months from activation_date to the snapshot date",
        "months",
        "int",
        valid_range=(0, 600),
        credit_role="mandatory",
        used_by=(_C, _CH),
        credit_direction=1,
    ),
    Indicator(
        "number_level",
        "号码级别",
        "Number level",
        "profile",
        ("subscribers",),
        "vanity grade of the phone number, 0 ordinary to 4 premium",
        "level",
        "int",
        valid_range=(0, 4),
        credit_role="optional",
        used_by=(_C,),
    ),
    Indicator(
        "terminal_class",
        "终端类型",
        "Terminal class",
        "profile",
        ("subscribers",),
        "terminal_class of the subscriber record; 'unknown' when the feed has none",
        "code",
        "category",
        codes=("feature_phone", "smartphone_4g", "smartphone_5g", "unknown"),
        used_by=(_P,),
    ),
    Indicator(
        "red_list_flag",
        "红名单标识",
        "On red list",
        "profile",
        ("red_black_list",),
        "1 if listed on the red list on or before the snapshot date",
        "flag",
        "int",
        valid_range=(0, 1),
        used_by=(_C, _CH),
        credit_direction=1,
    ),
    Indicator(
        "black_list_flag",
        "黑名单标识",
        "On black list",
        "profile",
        ("red_black_list",),
        "1 if listed on the black list on or before the snapshot date",
        "flag",
        "int",
        valid_range=(0, 1),
        used_by=(_C, _CH),
        credit_direction=-1,
    ),
    # --- billing and payment ---
    Indicator(
        "monthly_consumption",
        "消费情况",
        "Monthly consumption",
        "billing_payment",
        ("monthly_bills",),
        "total_fee of the snapshot month's bill",
        "yuan",
        "float",
        valid_range=(0, 100_000),
        credit_role="mandatory",
        used_by=EVALUATIONS,
        credit_direction=1,
    ),
    Indicator(
        "arpu_3m",
        "近3月ARPU",
        "ARPU, last 3 months",
        "billing_payment",
        ("monthly_bills",),
        "mean total_fee over the snapshot month and the two before",
        "yuan",
        "float",
        valid_range=(0, 100_000),
        used_by=(_S, _CH),
    ),
    Indicator(
        "bill_change_ratio",
        "话费变动率",
        "Bill change",
        "billing_payment",
        ("monthly_bills",),
        "total_fee of the snapshot month / mean of the three months before - 1 (0 without history; "
        "the activation month's partial bill is no baseline)",
        "ratio",
        "float",
        valid_range=(-1, 1_000),
        used_by=(_S, _CH),
    ),
    Indicator(
        "arrears_months_12m",
        "欠费记录",
        "Arrears record",
        "billing_payment",
        ("payments",),
        "months with arrears_amount > 0 in the last 12 months",
        "months",
        "int",
        valid_range=(0, 12),
        credit_role="mandatory",
        used_by=(_C, _CH),
        credit_direction=-1,
    ),
    Indicator(
        "arrears_amount",
        "欠费金额",
        "Arrears amount",
        "billing_payment",
        ("payments",),
        "arrears_amount of the snapshot month",
        "yuan",
        "float",
        valid_range=(0, 100_000),
        used_by=(_CH,),
    ),
    Indicator(
        "arrears_suspensions_12m",
        "欠费停机次数",
        "Suspensions for arrears",
        "billing_payment",
        ("payments",),
        "months suspended for arrears in the last 12 months",
        "months",
        "int",
        valid_range=(0, 12),
        used_by=(_CH,),
    ),
    # --- complaints and service ---
    Indicator(
        "complaint_count_3m",
        "投诉记录",
        "Complaint record",
        "complaints_service",
        ("complaints",),
        "complaints filed in the snapshot month and the two before",
        "complaints",
        "int",
        valid_range=(0, 500),
        credit_role="mandatory",
        used_by=EVALUATIONS,
        credit_direction=-1,
    ),
    Indicator(
        "complaint_count_12m",
        "近12月投诉次数",
        "Complaints, 12 months",
        "complaints_service",
        ("complaints",),
        "complaints filed in the last 12 months",
        "complaints",
        "int",
        valid_range=(0, 2_000),
        used_by=(_S,),
    ),
    Indicator(
        "billing_complaint_count_12m",
        "近12月计费类投诉",
        "Billing complaints, 12 months",
        "complaints_service",
        ("complaints",),
        "complaints of category 'billing' in the last 12 months",
        "complaints",
        "int",
        valid_range=(0, 2_000),
        used_by=(_S,),
    ),
    Indicator(
        "escalated_complaint_count_12m",
        "近12月升级投诉",
        "Escalated complaints, 12 months",
        "complaints_service",
        ("complaints",),
        "complaints with outcome 'escalated' in the last 12 months",
        "complaints",
        "int",
        valid_range=(0, 2_000),
        used_by=(_S,),
    ),
    Indicator(
        "days_since_last_complaint",
        "距最近投诉天数",
        "Days since last complaint",
        "complaints_service",
        ("complaints",),
        "days from the latest complaint_time to the snapshot date; empty if none in 12 months",
        "days",
        "float",
        valid_range=(0, 10_000),
        nullable=True,
        used_by=(_S, _CH),
    ),
    Indicator(
        "complaint_satisfaction",
        "投诉处理满意度",
        "Complaint-handling satisfaction",
        "complaints_service",
        ("complaints",),
        "mean survey satisfaction (1-5) of complaints in the last 12 months; empty if none answered",
        "score 1-5",
        "float",
        valid_range=(1, 5),
        nullable=True,
        credit_role="mandatory",
        used_by=(_C, _S, _CH),
        credit_direction=1,
    ),
    Indicator(
        "refund_count_12m",
        "退费次数",
        "Refund count",
        "complaints_service",
        ("refunds",),
        "refunds in the last 12 months",
        "refunds",
        "int",
        valid_range=(0, 1_000),
        credit_role="mandatory",
        used_by=(_C,),
        credit_direction=-1,
    ),
    Indicator(
        "refund_amount_12m",
        "退费金额",
        "Refund amount",
        "complaints_service",
        ("refunds",),
        "sum of refund amounts in the last 12 months",
        "yuan",
        "float",
        valid_range=(0, 1_000_000),
        credit_role="optional",
        used_by=(_C,),
        credit_direction=-1,
    ),
    Indicator(
        "double_refund_count_12m",
        "双返次数",
        "Double-refund count",
        "complaints_service",
        ("refunds",),
        "refunds flagged is_double_refund in the last 12 months",
        "refunds",
        "int",
        valid_range=(0, 1_000),
        credit_role="optional",
        used_by=(_C,),
        credit_direction=-1,
    ),
    Indicator(
        "gift_count_12m",
        "小额赠送次数",
        "Small gifts, 12 months",
        "complaints_service",
        ("small_gifts",),
        "small gifts (小额赠送: goodwill after a complaint, customer care) given in the last 12 months",
        "gifts",
        "int",
        valid_range=(0, 1_000),
        used_by=(_C,),
        credit_direction=1,
    ),
    Indicator(
        "gift_amount_12m",
        "小额赠送金额",
        "Small-gift amount, 12 months",
        "complaints_service",
        ("small_gifts",),
        "sum of small-gift amounts in the last 12 months",
        "yuan",
        "float",
        valid_range=(0, 100_000),
        used_by=(_C,),
        credit_direction=1,
    ),
    # --- usage ---
    Indicator(
        "voice_minutes",
        "通话时长",
        "Voice minutes",
        "usage",
        ("usage",),
        "voice_minutes of the snapshot month",
        "minutes",
        "float",
        valid_range=(0, 50_000),
        used_by=(_CH,),
    ),
    Indicator(
        "data_mb",
        "移动数据流量",
        "Mobile data",
        "usage",
        ("usage",),
        "data_mb of the snapshot month; empty when the GPRS feed is missing",
        "MB",
        "float",
        valid_range=(0, 5_000_000),
        nullable=True,
        used_by=(_CH, _P),
    ),
    Indicator(
        "sms_count",
        "短信条数",
        "SMS sent",
        "usage",
        ("usage",),
        "sms_count of the snapshot month",
        "messages",
        "int",
        valid_range=(0, 100_000),
        used_by=(_P,),
    ),
    Indicator(
        "roaming_minutes_3m",
        "近3月漫游时长",
        "Roaming minutes, 3 months",
        "usage",
        ("usage",),
        "roaming_minutes plus boundary_roaming_minutes over 3 months",
        "minutes",
        "float",
        valid_range=(0, 100_000),
        used_by=(_CH,),
    ),
    Indicator(
        "monternet_port_count",
        "梦网端口数",
        "Monternet port count",
        "usage",
        ("usage",),
        "Monternet/SP ports subscribed in the snapshot month",
        "ports",
        "int",
        valid_range=(0, 200),
        credit_role="optional",
        used_by=(_C,),
    ),
    Indicator(
        "business_dependence",
        "业务依赖度",
        "Business dependence",
        "usage",
        ("usage",),
        "services used in the snapshot month among voice, data, SMS, MMS, roaming, "
        "ring-back tone and SP subscriptions",
        "services",
        "int",
        valid_range=(0, 7),
        credit_role="optional",
        used_by=(_C, _CH),
        credit_direction=1,
    ),
    Indicator(
        "influence",
        "影响力",
        "Influence",
        "usage",
        ("usage",),
        "distinct numbers called in the snapshot month (size of the social circle)",
        "numbers",
        "int",
        valid_range=(0, 100_000),
        credit_role="optional",
        used_by=(_C,),
        credit_direction=1,
    ),
    # --- channel contacts ---
    Indicator(
        "billing_inquiry_count_3m",
        "话费查询次数",
        "Billing inquiries, 3 months",
        "channel_contacts",
        ("billing_inquiries",),
        "billing inquiries in the snapshot month and the two before",
        "inquiries",
        "int",
        valid_range=(0, 10_000),
        used_by=(_S, _CH),
    ),
    *(
        Indicator(
            f"contacts_{c}_3m",
            zh,
            en,
            "channel_contacts",
            ("channel_contacts",),
            f"contacts through {c.replace('_', ' ')} in the snapshot month and the two before",
            "contacts",
            "int",
            valid_range=(0, 10_000),
            used_by=(_P, _S) if c == "hotline_10086" else (_P,),
        )
        for c, zh, en in (
            ("online_hall", "网厅/APP接触次数", "Online hall and app contacts, 3 months"),
            ("hotline_10086", "10086接触次数", "10086 hotline contacts, 3 months"),
            ("sms_hall", "短信营业厅接触次数", "SMS hall contacts, 3 months"),
            ("business_hall", "营业厅接触次数", "Business hall visits, 3 months"),
            ("outbound", "外呼接触次数", "Outbound calls received, 3 months"),
        )
    ),
    Indicator(
        "outbound_response_rate_12m",
        "外呼响应率",
        "Outbound response rate",
        "channel_contacts",
        ("channel_contacts",),
        "share of outbound calls in the last 12 months the customer responded to; empty if none",
        "share",
        "float",
        valid_range=(0, 1),
        nullable=True,
        used_by=(_P,),
    ),
)

BY_ID: dict[str, Indicator] = {i.id: i for i in CATALOGUE}
SUBJECTS: tuple[Subject, ...] = (
    "profile",
    "billing_payment",
    "complaints_service",
    "usage",
    "channel_contacts",
)


def indicator(indicator_id: str) -> Indicator:
    """Look an indicator up by id; an unknown id names the valid ones."""
    try:
        return BY_ID[indicator_id]
    except KeyError:
        from core.errors import ConfigurationError

        raise ConfigurationError(
            f"unknown indicator {indicator_id!r}; valid indicators: {', '.join(BY_ID)}"
        ) from None


def by_subject(subject: Subject) -> list[Indicator]:
    """Indicators of one subject (one Feast feature view), in catalogue order."""
    return [i for i in CATALOGUE if i.subject == subject]


def for_task(task: str) -> list[Indicator]:
    """Indicators a task's feature contract uses, in catalogue order."""
    return [i for i in CATALOGUE if task in i.used_by]


def service_name(evaluation: str, province: str | None = None, version: int = CONTRACT_VERSION) -> str:
    """An evaluation's feature contract (Feast FeatureService), e.g. ``credit_grade_v1`` or
    ``credit_grade_gd_v1``."""
    middle = f"_{province.lower()}" if province else ""
    return f"{evaluation}{middle}_v{version}"


def credit_indicators(role: CreditRole | None = None) -> list[Indicator]:
    """The credit specification's indicators: mandatory, optional, or both."""
    return [i for i in CATALOGUE if i.credit_role and (role is None or i.credit_role == role)]


def numeric_indicator(indicator_id: str) -> str:
    """``indicator_id`` if it names a numeric indicator of the library (a category has no threshold,
    range or standard score); otherwise a ValueError naming the closest and the valid ones (what
    configuration files' validators raise)."""
    numeric = [i.id for i in CATALOGUE if i.kind != "category"]
    if indicator_id not in numeric:
        close = difflib.get_close_matches(str(indicator_id), numeric, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown or non-numeric indicator {indicator_id!r}{hint}; valid: {', '.join(numeric)}"
        )
    return indicator_id


def encoded(indicator: Indicator, values) -> np.ndarray:
    """An indicator's values as every model reads them: numbers as floats, a category as the
    index of its code in the library; NaN where missing, unknown or not a number.

    The one encoding training, serving and batch scoring share. A few values (one call)
    take a plain loop: building pandas objects would cost more than the model.
    """
    few = len(values) < 64
    if indicator.kind == "category":
        if few:
            lookup = {code: float(k) for k, code in enumerate(indicator.codes)}
            return np.array(
                [lookup.get(v, np.nan) if isinstance(v, str) else np.nan for v in values], dtype=float
            )
        k = pd.Categorical(np.asarray(values, dtype=object), categories=list(indicator.codes)).codes
        return np.where(k >= 0, k, np.nan)
    if few:
        return np.array([_number(v) for v in values], dtype=float)
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _number(value) -> float:
    try:
        return np.nan if value is None else float(value)
    except (TypeError, ValueError):
        return np.nan
