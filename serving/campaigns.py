"""Campaigns out (客服营销服务流程): from a campaign's definition to the outbound system's list.

The Sichuan campaign flow, as pure transforms over one province's snapshot and the champions'
decisions (the CRM file's columns, ``core.tasks.crm_columns``): screen the target customers
(目标客户筛选), suppress those who must not be contacted — each with the first reason that holds —,
hold out a random control group for measuring the campaign, and plan the service waves (服务波次)
of the rest: wave 1 on the customer's best channel at the start, wave k on the k-th channel of the
ranking ``days_between`` days later if the wave before drew no response. Reading the snapshot and
writing the files is ``serving.campaign_run``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import indicators as lib
from core.errors import ConfigurationError
from serving.campaign_config import OFFER_PURPOSES, Campaign

#: Suppression rules in the order they are applied (a customer keeps the first that holds):
#: code -> (English, Chinese).
SUPPRESSION_REASONS: dict[str, tuple[str, str]] = {
    "contact_cap": ("contacted as often as the cap allows in 90 days", "90天内接触次数已达上限"),
    "do_not_disturb": ("asked not to be disturbed", "客户要求免打扰"),
    "black_list": ("on the black list", "黑名单客户"),
    "open_complaint": ("a recent complaint, taken as still open", "近期有投诉，视为投诉未结"),
    "tariff_sensitive": ("tariff-sensitive: no plan or service offers", "话费敏感客户：不推荐套餐或新业务"),
    "credit_poor": ("credit grade 2 or worse: no goodwill gift", "信用较差及以下：不予小额赠送"),
}
#: Every channel's contacts of the snapshot month and the two before (about 90 days).
CONTACT_COLUMNS = tuple(f"contacts_{c}_3m" for c in lib.CHANNELS)
#: The worst credit grade kept out of goodwill gifts (2 信用较差: verification before any refund).
CREDIT_POOR_AT_MOST = 2
#: The columns the selection's profile counts by.
PROFILE = ("brand", "customer_category", "credit_grade", "churn_band", "best_channel")
#: A campaign's targets -> (the decisions' or indicators' column, the evaluation deciding it).
_LISTED_TARGETS = {
    "brands": ("brand", None),
    "customer_categories": ("customer_category", None),
    "churn_bands": ("churn_band", "churn"),
    "tariff_sensitivity_levels": ("tariff_sensitivity_level", "tariff_sensitivity"),
    "complaint_sensitivity_levels": ("complaint_sensitivity_level", "complaint_sensitivity"),
    "best_channels": ("best_channel", "channel_preference"),
}


@dataclass
class Plan:
    """The campaign over one snapshot: each targeted customer's ``status`` (``contact``,
    ``control`` or ``suppressed``), its suppression ``reason``, contacts so far and decisions."""

    campaign: Campaign
    month: str
    customers: int
    selected: pd.DataFrame


def contacts_so_far(frame: pd.DataFrame) -> np.ndarray:
    """Contacts of every channel over the last three months (已服务频次); a missing count is 0."""
    present = [c for c in CONTACT_COLUMNS if c in frame]
    if not present:
        return np.zeros(len(frame), dtype=np.int64)
    counts = frame[present].apply(pd.to_numeric, errors="coerce").fillna(0)
    return counts.sum(axis=1).to_numpy(dtype=np.int64)


def active_do_not_disturb(table: pd.DataFrame | None, on: dt.date) -> set[str]:
    """Customers whose do-not-disturb request holds on ``on``: no end date, or one not passed.

    A request for one channel keeps the customer out of the whole campaign: its waves move across
    channels, and a customer who refused one is not to be pressed on the next.
    """
    if table is None or table.empty:
        return set()
    until = pd.to_datetime(table["until"], errors="coerce")
    active = until.isna() | (until.dt.date >= on)
    return set(table.loc[active, "msisdn"].astype(str))


def targeted(
    campaign: Campaign, frame: pd.DataFrame, decided: pd.DataFrame, cities: pd.Series | None = None
) -> np.ndarray:
    """Whether each customer meets every condition of the campaign's targets."""
    targets = campaign.targets
    keep = np.ones(len(frame), dtype=bool)
    both = pd.concat([frame.reset_index(drop=True), decided.reset_index(drop=True)], axis=1)
    for key, (column, evaluation) in _LISTED_TARGETS.items():
        wanted = getattr(targets, key)
        if wanted is None:
            continue
        if column not in both:
            raise ConfigurationError(_missing(campaign, key, evaluation or column))
        keep &= both[column].isin(wanted).to_numpy()
    if targets.credit_grade is not None:
        if "credit_grade" not in both:
            raise ConfigurationError(_missing(campaign, "credit_grade", "credit_grade"))
        grade = both["credit_grade"].to_numpy()
        keep &= (grade >= targets.credit_grade.at_least) & (grade <= targets.credit_grade.at_most)
    for indicator_id, between in targets.indicators.items():
        if indicator_id not in both:
            raise ConfigurationError(_missing(campaign, f"indicators.{indicator_id}", indicator_id))
        values = pd.to_numeric(both[indicator_id], errors="coerce").to_numpy(dtype=float)
        inside = ~np.isnan(values)  # an unknown value meets no range
        if between.at_least is not None:
            inside &= values >= between.at_least
        if between.at_most is not None:
            inside &= values <= between.at_most
        keep &= inside
    if targets.cities is not None:
        if cities is None:
            raise ConfigurationError(_missing(campaign, "cities", "city (the subscribers table)"))
        keep &= cities.reset_index(drop=True).isin(targets.cities).to_numpy()
    return keep


def _missing(campaign: Campaign, key: str, what: str) -> str:
    return (
        f"campaign {campaign.name}: targets.{key} needs {what}, which {campaign.province}'s snapshot "
        "or champions do not have; remove the condition or train the model"
    )


def suppression(
    campaign: Campaign, frame: pd.DataFrame, decided: pd.DataFrame, do_not_disturb: set[str]
) -> np.ndarray:
    """Each customer's suppression reason (``SUPPRESSION_REASONS``'s code, the first that holds),
    or None for a customer the campaign may contact."""
    n = len(frame)
    msisdn = frame["msisdn"].astype(str).to_numpy()
    tariff = decided.get("tariff_sensitivity_level")
    grade = decided.get("credit_grade")
    rules = {
        "contact_cap": contacts_so_far(frame) >= campaign.contact_cap,
        "do_not_disturb": np.isin(msisdn, list(do_not_disturb)),
        "black_list": _numbers(frame, "black_list_flag", 0.0) == 1,
        # the library keeps no complaint's state: a complaint within open_complaint_days is taken as open
        "open_complaint": _numbers(frame, "days_since_last_complaint", np.inf)
        <= campaign.open_complaint_days,
        "tariff_sensitive": (
            np.full(n, campaign.purpose in OFFER_PURPOSES)
            & (tariff.to_numpy() == "high" if tariff is not None else np.zeros(n, dtype=bool))
        ),
        "credit_poor": (
            np.full(n, campaign.purpose == "care" and campaign.offer.gift_yuan > 0)
            & (grade.to_numpy() <= CREDIT_POOR_AT_MOST if grade is not None else np.zeros(n, dtype=bool))
        ),
    }
    reason = np.full(n, None, dtype=object)
    for code in SUPPRESSION_REASONS:
        reason[(reason == None) & rules[code]] = code  # noqa: E711 (elementwise)
    return reason


def _numbers(frame: pd.DataFrame, column: str, missing: float) -> np.ndarray:
    """An indicator's values as floats, ``missing`` where unknown or where the data lacks it."""
    if column not in frame:
        return np.full(len(frame), missing)
    return pd.to_numeric(frame[column], errors="coerce").fillna(missing).to_numpy(dtype=float)


def control_group(campaign: Campaign, msisdns) -> np.ndarray:
    """A random ``control_share`` of the customers held out, seeded by the campaign's name: the same
    name gives the same group whatever the order of the rows or the other customers."""
    key = hashlib.sha256(campaign.name.encode()).hexdigest()[:16]
    hashed = pd.util.hash_pandas_object(
        pd.Series(np.asarray(msisdns, dtype=object)), index=False, hash_key=key
    )
    return hashed.to_numpy(dtype=np.uint64) / 2.0**64 < campaign.control_share


def wave_plan(campaign: Campaign, rankings) -> pd.DataFrame:
    """``wave_k_channel`` (the k-th of each customer's channel ranking, ``"a,b,c"``), its Chinese name
    and ``wave_k_date`` (the start plus k-1 times ``days_between``), for k up to ``max_waves``."""
    ranked = pd.Series(np.asarray(rankings, dtype=object)).str.split(",", expand=True)
    columns = {}
    for k in range(1, campaign.waves.max_waves + 1):
        channel = ranked[k - 1] if k - 1 in ranked else pd.Series([None] * len(ranked))
        columns[f"wave_{k}_channel"] = channel.to_numpy(dtype=object)
        columns[f"wave_{k}_channel_zh"] = channel.map(
            lambda c: lib.CHANNEL_NAMES[c][0] if c in lib.CHANNEL_NAMES else None
        ).to_numpy(dtype=object)
        day = campaign.start + dt.timedelta(days=(k - 1) * campaign.waves.days_between)
        columns[f"wave_{k}_date"] = np.full(len(ranked), day, dtype=object)
    return pd.DataFrame(columns)


def plan(
    campaign: Campaign,
    month: str,
    frame: pd.DataFrame,
    decided: pd.DataFrame,
    do_not_disturb: set[str],
    cities: pd.Series | None = None,
) -> Plan:
    """The campaign over a snapshot: the targeted customers, each suppressed (with its reason),
    held out as control, or to contact."""
    keep = targeted(campaign, frame, decided, cities)
    frame = frame.reset_index(drop=True)[keep].reset_index(drop=True)
    decided = decided.reset_index(drop=True)[keep].reset_index(drop=True)
    reason = suppression(campaign, frame, decided, do_not_disturb)
    control = control_group(campaign, frame["msisdn"]) & (reason == None)  # noqa: E711
    status = np.where(reason != None, "suppressed", np.where(control, "control", "contact"))  # noqa: E711
    profile = {c: (decided[c] if c in decided else frame.get(c)) for c in PROFILE}
    selected = pd.DataFrame(
        {
            "msisdn": frame["msisdn"].astype(str).to_numpy(),
            "status": status,
            "reason": reason,
            "contacts_3m": contacts_so_far(frame),
            **{c: (v.to_numpy() if v is not None else np.full(len(frame), None)) for c, v in profile.items()},
            "channel_ranking": decided.get("channel_ranking", pd.Series([None] * len(frame))).to_numpy(),
        }
    )
    return Plan(campaign, month, int(len(keep)), selected)


def preview(result: Plan) -> dict:
    """The counts (selected, suppressed per reason, control, to contact) and the profile of the
    selection and of those to contact, by brand, category, credit grade, churn band and best channel."""
    selected = result.selected
    contact = selected[selected["status"] == "contact"]
    reasons = selected["reason"].value_counts()
    profile = {}
    for column in PROFILE:
        values = selected[column].dropna()
        if values.empty:
            continue
        both = pd.DataFrame(
            {
                "selected": values.astype(str).value_counts(),
                "to_contact": contact[column].dropna().astype(str).value_counts(),
            }
        )
        profile[column] = {
            str(value): {
                "selected": int(row["selected"]),
                "to_contact": int(np.nan_to_num(row["to_contact"])),
            }
            for value, row in both.sort_index().iterrows()
        }
    return {
        "campaign": result.campaign.name,
        "province": result.campaign.province,
        "month": result.month,
        "customers": result.customers,
        "selected": len(selected),
        "suppressed": {code: int(reasons.get(code, 0)) for code in SUPPRESSION_REASONS},
        "control": int((selected["status"] == "control").sum()),
        "to_contact": len(contact),
        "profile": profile,
    }
