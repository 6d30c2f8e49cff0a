"""Core customer retention (核心客户保有) as a province file's ``retention:`` section holds it.

The group's 2009 specification makes core customer retention a mandatory set: identify the core
customers, warn with configured indicator thresholds (指标配置预警判别法) or a composite index
(指标综合评估法), and keep a retention list a team can call. The specification names the methods,
not their values: the defaults below are the platform's, and a province file overrides any of
them. Every number is bounded (a province file is read from outside), every indicator is the
library's (``core.indicators``). ``serving.retention`` applies the section.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from core import indicators as lib

_CATEGORIES = lib.BY_ID["customer_category"].codes or ()
_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: At most this many threshold rules and composite weights (an agent reads every fired rule).
MAX_RULES = 20
#: A composite weight lies within +-MAX_WEIGHT (the sign says which way the risk grows).
MAX_WEIGHT = 10.0
#: A relative change (``change: true``) lies between -100% and +1000%.
CHANGE_RANGE = (-1.0, 10.0)


def _rule_name(name: str) -> str:
    if not _RULE_NAME.fullmatch(name):
        raise ValueError(f"rule name {name!r} must be lower_snake_case (a-z, 0-9, _), at most 40 characters")
    return name


NumericIndicator = Annotated[str, AfterValidator(lib.numeric_indicator)]
RuleName = Annotated[str, AfterValidator(_rule_name)]
Category = Literal[_CATEGORIES]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoreRule(_Strict):
    """Who is a core customer (核心客户): a customer worth a retention call. Core when the customer
    has both spent at least ``min_arpu_3m`` yuan a month over three months and stayed at least
    ``min_tenure_months``, or is in one of ``categories`` (the VIP tiers by default)."""

    min_arpu_3m: float = Field(100.0, ge=0, le=100_000)
    min_tenure_months: int = Field(24, ge=0, le=600)
    categories: tuple[Category, ...] = Field(("vip_gold", "vip_diamond"), max_length=len(_CATEGORIES))


class ThresholdRule(_Strict):
    """One warning rule of 指标配置预警判别法: fires when the indicator (or, with ``change``, its
    relative change since the month before) is at least ``at_least`` or at most ``at_most``."""

    indicator: NumericIndicator
    at_least: float | None = None
    at_most: float | None = None
    change: bool = False

    @model_validator(mode="after")
    def _bounded(self) -> ThresholdRule:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError(f"rule on {self.indicator!r} needs exactly one of 'at_least' or 'at_most'")
        low, high = CHANGE_RANGE if self.change else lib.BY_ID[self.indicator].valid_range or (-1e12, 1e12)
        value = self.threshold
        if not low <= value <= high:
            what = "its relative change" if self.change else "its valid range"
            raise ValueError(f"threshold {value} on {self.indicator!r} is outside {what} [{low}, {high}]")
        return self

    @property
    def threshold(self) -> float:
        return self.at_least if self.at_least is not None else self.at_most  # type: ignore[return-value]

    @property
    def sign(self) -> str:
        return "≥" if self.at_least is not None else "≤"

    def words(self) -> tuple[str, str]:
        """(English, Chinese) of the rule, e.g. ``Bill change ≤ -0.3``."""
        ind = lib.BY_ID[self.indicator]
        if self.change:
            return (
                f"{ind.name_en} change {self.sign} {self.threshold:+.0%}",
                f"{ind.name_zh}环比{self.sign}{self.threshold:+.0%}",
            )
        return f"{ind.name_en} {self.sign} {self.threshold:g}", f"{ind.name_zh}{self.sign}{self.threshold:g}"


#: The group's warning rules: a bill falling by 30%, arrears, two complaints in three months,
#: voice minutes halved since the month before (the documents' contacts falling).
DEFAULT_RULES = {
    "bill_drop": ThresholdRule(indicator="bill_change_ratio", at_most=-0.3),
    "arrears": ThresholdRule(indicator="arrears_amount", at_least=1),
    "complaints": ThresholdRule(indicator="complaint_count_3m", at_least=2),
    "usage_falling": ThresholdRule(indicator="voice_minutes", at_most=-0.5, change=True),
}
#: The group's composite index: the sign of a weight says which way the risk grows (a falling bill,
#: arrears, complaints and billing inquiries raise it; satisfaction, dependence and tenure lower it).
DEFAULT_WEIGHTS = {
    "bill_change_ratio": -1.0,
    "arrears_amount": 1.0,
    "complaint_count_3m": 1.0,
    "complaint_satisfaction": -1.0,
    "billing_inquiry_count_3m": 0.5,
    "business_dependence": -1.0,
    "tenure_months": -0.5,
}


class CompositeIndex(_Strict):
    """指标综合评估法: the weighted mean of the indicators' standard scores among the province's
    core customers; a customer is warned at or above the ``percentile`` of the index."""

    weights: dict[NumericIndicator, Annotated[float, Field(ge=-MAX_WEIGHT, le=MAX_WEIGHT)]] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS), min_length=1, max_length=MAX_RULES
    )
    percentile: float = Field(90.0, ge=50, le=99.9)

    @model_validator(mode="after")
    def _some_weight(self) -> CompositeIndex:
        if not any(self.weights.values()):
            raise ValueError("every composite weight is 0: give at least one indicator a weight")
        return self


class Capacity(_Strict):
    """How many core customers the retention team can call per province and month: ``count``
    customers, else a ``share`` of the core customers (the riskiest by churn probability)."""

    share: float = Field(0.05, gt=0, le=1)
    count: int | None = Field(None, ge=1, le=10_000_000)


class RetentionConfig(_Strict):
    """A province file's ``retention:`` section; every key optional (the group's defaults)."""

    core_rule: CoreRule = Field(default_factory=CoreRule)
    warning_rules: dict[RuleName, ThresholdRule] = Field(
        default_factory=lambda: dict(DEFAULT_RULES), min_length=1, max_length=MAX_RULES
    )
    #: a customer is warned by the thresholds when at least this many rules fire
    rules_to_warn: int = Field(1, ge=1, le=MAX_RULES)
    composite: CompositeIndex = Field(default_factory=CompositeIndex)
    capacity: Capacity = Field(default_factory=Capacity)

    @model_validator(mode="after")
    def _reachable(self) -> RetentionConfig:
        if self.rules_to_warn > len(self.warning_rules):
            raise ValueError(
                f"rules_to_warn is {self.rules_to_warn} but there are only {len(self.warning_rules)} "
                "warning_rules: no customer could be warned"
            )
        return self


__all__ = ["Capacity", "CompositeIndex", "CoreRule", "RetentionConfig", "ThresholdRule"]
