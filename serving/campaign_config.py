"""A campaign's definition (营销活动): whom to target, what to offer, in which service waves.

Written by a campaign manager in a small YAML file (or given as command-line options), so it is
user input: every key known, every value typed and bounded, every indicator the library's, and an
error names the file, line and key (``spring.yaml:7: targets.credit_grade.at_least: ...``).
``serving.campaigns`` applies it to a province's snapshot.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from core import indicators as lib
from core.errors import ConfigurationError
from core.tasks import CHURN_BANDS, CREDIT_GRADES, SENSITIVITY_LEVELS
from features.provinces import GuidanceText
from features.yamlfile import YamlFile

#: What a campaign is for: keeping core customers (保有), customer care (客户关怀), tariff
#: communication (资费沟通), selling another service, reminding of arrears (催缴).
PURPOSES = ("retention", "care", "tariff_communication", "cross_sell", "dunning")
#: The purposes whose offer recommends a plan or a service: never to a tariff-sensitive customer.
OFFER_PURPOSES = ("cross_sell", "tariff_communication")
#: At most this many conditions on library indicators, and of values listed per condition.
MAX_CONDITIONS = 20
MAX_LISTED = 200
#: A campaign name: it names the export's folder and files, so nothing that walks a path.
CAMPAIGN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_CITY = re.compile(r"^[^\x00-\x1f\x7f-\x9f/\\]{1,40}$")

Brand = Literal[lib.BY_ID["brand"].codes]  # type: ignore[valid-type]
Category = Literal[lib.BY_ID["customer_category"].codes]  # type: ignore[valid-type]
Channel = Literal[lib.CHANNELS]  # type: ignore[valid-type]
Band = Literal[tuple(b[1] for b in CHURN_BANDS)]  # type: ignore[valid-type]
Level = Literal[tuple(level[1] for level in SENSITIVITY_LEVELS)]  # type: ignore[valid-type]
Grade = Annotated[int, Field(ge=CREDIT_GRADES[0][0], le=CREDIT_GRADES[-1][0])]


def _campaign_name(name: str) -> str:
    if not CAMPAIGN_NAME.fullmatch(name):
        raise ValueError(
            f"campaign name {name!r} must be lower case letters, digits, '_' or '-', at most 40 "
            "characters (it names the export's folder and files)"
        )
    return name


def _city(name: str) -> str:
    if not _CITY.fullmatch(name):
        raise ValueError(f"city {name!r} must be 1-40 characters without control characters or slashes")
    return name


def _listed():
    return Field(None, min_length=1, max_length=MAX_LISTED)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Between(_Strict):
    """A range: at least ``at_least`` and at most ``at_most`` (either may be left out)."""

    at_least: float | None = Field(None, ge=-1e12, le=1e12, allow_inf_nan=False)
    at_most: float | None = Field(None, ge=-1e12, le=1e12, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Between:
        if self.at_least is None and self.at_most is None:
            raise ValueError("give 'at_least', 'at_most' or both")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least ({self.at_least:g}) is above at_most ({self.at_most:g})")
        return self


class GradeRange(_Strict):
    """Credit grades from ``at_least`` to ``at_most`` (1 信用极差 ... 5 信用极好)."""

    at_least: Grade = CREDIT_GRADES[0][0]
    at_most: Grade = CREDIT_GRADES[-1][0]

    @model_validator(mode="after")
    def _ordered(self) -> GradeRange:
        if self.at_least > self.at_most:
            raise ValueError(f"at_least ({self.at_least}) is above at_most ({self.at_most})")
        return self


class Targets(_Strict):
    """目标客户筛选: every condition given must hold (a list: any of its values)."""

    cities: list[Annotated[str, AfterValidator(_city)]] | None = _listed()
    brands: list[Brand] | None = _listed()
    customer_categories: list[Category] | None = _listed()
    churn_bands: list[Band] | None = _listed()
    credit_grade: GradeRange | None = None
    tariff_sensitivity_levels: list[Level] | None = _listed()
    complaint_sensitivity_levels: list[Level] | None = _listed()
    best_channels: list[Channel] | None = _listed()
    #: library indicator -> its range, e.g. ``roaming_minutes_3m: {at_least: 60}``
    indicators: dict[Annotated[str, AfterValidator(lib.numeric_indicator)], Between] = Field(
        default_factory=dict, max_length=MAX_CONDITIONS
    )

    @model_validator(mode="after")
    def _within_ranges(self) -> Targets:
        for indicator_id, between in self.indicators.items():
            low, high = lib.BY_ID[indicator_id].valid_range or (-1e12, 1e12)
            for bound in (between.at_least, between.at_most):
                if bound is not None and not low <= bound <= high:
                    raise ValueError(
                        f"indicators.{indicator_id}: {bound:g} is outside the indicator's valid range "
                        f"[{low:g}, {high:g}]"
                    )
        return self


class Offer(_Strict):
    """What the customer is offered, in both languages; ``gift_yuan`` a goodwill gift (小额赠送)."""

    en: GuidanceText
    zh: GuidanceText
    gift_yuan: float = Field(0.0, ge=0, le=500, allow_inf_nan=False)


class Waves(_Strict):
    """服务波次: wave 1 on the customer's best channel at the start; wave k on the k-th channel of
    the ranking ``days_between`` days after the wave before drew no response."""

    max_waves: int = Field(3, ge=1, le=len(lib.CHANNELS))
    days_between: int = Field(7, ge=1, le=90)


class Campaign(_Strict):
    """One campaign: its target customers, suppression limits, offer and waves."""

    name: Annotated[str, AfterValidator(_campaign_name)]
    purpose: Literal[PURPOSES]  # type: ignore[valid-type]
    province: Literal[lib.PROVINCES]  # type: ignore[valid-type]
    offer: Offer
    start: dt.date = Field(ge=dt.date(2000, 1, 1), le=dt.date(2099, 12, 31))
    targets: Targets = Field(default_factory=Targets)
    waves: Waves = Field(default_factory=Waves)
    #: the most contacts a customer may have had in 90 days (all channels' ``contacts_*_3m``)
    contact_cap: int = Field(12, ge=1, le=1_000)
    #: a complaint filed this many days or fewer before the snapshot counts as still open
    open_complaint_days: int = Field(30, ge=0, le=365)
    control_share: float = Field(0.1, ge=0, le=0.5, allow_inf_nan=False)


def read_campaign(path: Path, overrides: dict | None = None) -> Campaign:
    """The campaign of a YAML file, with ``overrides`` (top-level keys, e.g. from the command line)
    replacing the file's values; every error names the file, line and key."""
    file = YamlFile(Path(path))
    if overrides:
        if not isinstance(file.data, dict):
            raise file.error((), "expected a mapping of keys to values at the top of the file")
        merged = dict(file.data)
        for key, value in overrides.items():  # an option replaces one value of a section (offer.en)
            inner = merged.get(key)
            merged[key] = {**inner, **value} if isinstance(value, dict) and isinstance(inner, dict) else value
        file.data = merged
    return file.validate(Campaign)


def campaign_of(values: dict) -> Campaign:
    """A campaign given without a file (command-line options); an error names the option."""
    try:
        return Campaign.model_validate(values)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            option = ".".join(str(p) for p in e["loc"]).replace("_", "-")
            lines.append(f"--{option}: {e['msg'].removeprefix('Value error, ')}")
        raise ConfigurationError("campaign: " + "; ".join(lines)) from None


__all__ = [
    "CAMPAIGN_NAME",
    "Campaign",
    "OFFER_PURPOSES",
    "PURPOSES",
    "Targets",
    "campaign_of",
    "read_campaign",
]
