"""The synthetic world's truth: label probabilities as known functions of indicators.

Each function reads only indicators in its task's feature contract (``INPUTS``), so
the probabilities it returns are the best any model can achieve from what it sees:
the oracle. Labels are drawn from them with independent noise. Written to the truth
tables, never to the feature store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.indicators import CHANNEL_PREFERENCE, CHANNELS, CHURN, CREDIT_GRADE, SENSITIVITY
from core.tasks import CREDIT_GRADES

#: Ordered-logit cut points and scale: P(grade <= k) = sigmoid((cut_k - score) / scale).
CREDIT_CUTS = np.array([1.5, 2.7, 4.2, 5.1])
CREDIT_SCALE = 0.6
SENSITIVITY_NOISE_SD = 8.0

INPUTS: dict[str, tuple[str, ...]] = {
    CREDIT_GRADE: (
        "customer_category",
        "brand",
        "payment_method",
        "tenure_months",
        "monthly_consumption",
        "arrears_months_12m",
        "complaint_count_3m",
        "refund_count_12m",
        "complaint_satisfaction",
        "number_level",
        "influence",
        "business_dependence",
        "refund_amount_12m",
        "monternet_port_count",
        "double_refund_count_12m",
    ),
    SENSITIVITY: (
        "billing_inquiry_count_3m",
        "bill_change_ratio",
        "payment_method",
        "brand",
        "arpu_3m",
        "complaint_count_12m",
        "complaint_count_3m",
        "escalated_complaint_count_12m",
        "billing_complaint_count_12m",
        "complaint_satisfaction",
        "contacts_hotline_10086_3m",
        "days_since_last_complaint",
    ),
    CHURN: (
        "tenure_months",
        "complaint_count_3m",
        "bill_change_ratio",
        "brand",
        "payment_method",
        "arrears_months_12m",
        "arrears_suspensions_12m",
        "red_list_flag",
        "complaint_satisfaction",
        "business_dependence",
        "customer_category",
    ),
    CHANNEL_PREFERENCE: (
        "terminal_class",
        "data_mb",
        "sms_count",
        "brand",
        "customer_category",
        "outbound_response_rate_12m",
        *(f"contacts_{c}_3m" for c in CHANNELS),
    ),
}


@dataclass(frozen=True)
class World:
    """What has changed in the world by a month (the drift switch)."""

    tariff_change: bool = False
    competitor_offer: bool = False

    @classmethod
    def at(cls, month: str, drift_month: str | None) -> World:
        changed = drift_month is not None and month >= drift_month
        return cls(tariff_change=changed, competitor_offer=changed)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=float)


def _satisfaction_gap(frame: pd.DataFrame) -> np.ndarray:
    """Satisfaction minus the scale's middle; 0 when the customer answered no survey."""
    return np.nan_to_num(_col(frame, "complaint_satisfaction") - 3.0)


def credit_score(frame: pd.DataFrame) -> np.ndarray:
    """Latent credit score (higher is better) from the 15 credit indicators."""
    category = (
        frame["customer_category"]
        .map({"individual": 0.0, "group_member": 0.3, "vip_silver": 0.6, "vip_gold": 0.9, "vip_diamond": 1.2})
        .to_numpy(float)
    )
    payment = (
        frame["payment_method"]
        .map({"prepaid": 0.0, "postpaid_cash": 0.2, "bank_debit": 0.45})
        .to_numpy(float)
    )
    brand = frame["brand"].map({"gotone": 0.2, "mzone": 0.0, "easyown": -0.1}).to_numpy(float)
    return (
        0.45 * np.log1p(_col(frame, "tenure_months"))
        + 0.35 * np.log1p(_col(frame, "monthly_consumption"))
        + category
        + payment
        + brand
        - 0.55 * _col(frame, "arrears_months_12m")
        - 0.45 * _col(frame, "complaint_count_3m")
        - 0.6 * _col(frame, "refund_count_12m")
        + 0.35 * _satisfaction_gap(frame)
        + 0.1 * _col(frame, "number_level")
        + 0.12 * np.log1p(_col(frame, "influence"))
        + 0.08 * _col(frame, "business_dependence")
        - 0.15 * np.log1p(_col(frame, "refund_amount_12m"))
        - 1.0 * _col(frame, "double_refund_count_12m")
        - 0.05 * _col(frame, "monternet_port_count")
    )


def credit_grade_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """P(grade = 1..5) per customer, shape (n, 5), by an ordered logit on the credit score."""
    score = credit_score(frame)
    cumulative = _sigmoid((CREDIT_CUTS[None, :] - score[:, None]) / CREDIT_SCALE)
    cumulative = np.hstack([np.zeros((len(score), 1)), cumulative, np.ones((len(score), 1))])
    return np.diff(cumulative, axis=1)


def tariff_sensitivity_expected(frame: pd.DataFrame) -> np.ndarray:
    """Expected tariff sensitivity (0-100): billing inquiries and reactions to charges."""
    change = np.clip(_col(frame, "bill_change_ratio"), -0.5, 1.5)
    return 100 * _sigmoid(
        -2.0
        + 0.8 * np.log1p(_col(frame, "billing_inquiry_count_3m"))
        + 2.5 * change
        + 0.5 * (frame["payment_method"] == "prepaid").to_numpy(float)
        + 0.3 * (frame["brand"] == "easyown").to_numpy(float)
        - 0.3 * (np.log1p(_col(frame, "arpu_3m")) - 4.0)
    )


def complaint_sensitivity_expected(frame: pd.DataFrame) -> np.ndarray:
    """Expected complaint sensitivity (0-100) from complaint history."""
    days = _col(frame, "days_since_last_complaint")
    recency = np.where(np.isnan(days), 0.0, np.exp(-np.nan_to_num(days) / 60.0))
    return 100 * _sigmoid(
        -2.2
        + 1.0 * np.log1p(_col(frame, "complaint_count_12m"))
        + 0.6 * np.log1p(_col(frame, "complaint_count_3m"))
        + 0.8 * np.log1p(_col(frame, "escalated_complaint_count_12m"))
        + 0.5 * np.log1p(_col(frame, "billing_complaint_count_12m"))
        - 0.3 * _satisfaction_gap(frame)
        + 0.35 * np.log1p(_col(frame, "contacts_hotline_10086_3m"))
        + 0.8 * recency
    )


def churn_probability(frame: pd.DataFrame, world: World) -> np.ndarray:
    """P(the line closes in the month after the snapshot)."""
    mzone = (frame["brand"] == "mzone").to_numpy(float)
    vip = frame["customer_category"].astype(str).str.startswith("vip").to_numpy(float)
    drop = -np.minimum(np.clip(_col(frame, "bill_change_ratio"), -1, 1), 0)
    logit = (
        -2.3
        - 0.4 * np.log1p(_col(frame, "tenure_months"))
        + 0.45 * np.log1p(_col(frame, "complaint_count_3m"))
        + 1.5 * drop
        + 0.5 * mzone
        + 0.4 * (frame["payment_method"] == "prepaid").to_numpy(float)
        + 0.15 * _col(frame, "arrears_months_12m")
        + 0.8 * (_col(frame, "arrears_suspensions_12m") > 0)
        - 0.3 * _col(frame, "red_list_flag")
        - 0.25 * _satisfaction_gap(frame)
        - 0.2 * _col(frame, "business_dependence")
        - 0.3 * vip
        + (1.3 * mzone if world.competitor_offer else 0.0)
    )
    return _sigmoid(logit)


def channel_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """P(preferred channel = c) for c in CHANNELS, shape (n, 5), by a multinomial logit."""
    terminal = (
        frame["terminal_class"]
        .map({"smartphone_5g": 0.4, "smartphone_4g": 0.2, "feature_phone": -1.2, "unknown": 0.0})
        .to_numpy(float)
    )
    feature_phone = (frame["terminal_class"] == "feature_phone").to_numpy(float)
    vip = frame["customer_category"].astype(str).str.startswith("vip").to_numpy(float)
    response = np.nan_to_num(_col(frame, "outbound_response_rate_12m") - 0.3)
    contacts = {c: np.log1p(_col(frame, f"contacts_{c}_3m")) for c in CHANNELS}
    utility = np.column_stack(
        [
            0.9 * contacts["online_hall"]
            + 0.25 * np.log1p(np.nan_to_num(_col(frame, "data_mb")) / 1000)
            + terminal
            + 0.3 * (frame["brand"] == "mzone").to_numpy(float),
            0.9 * contacts["hotline_10086"] + 0.3,
            0.9 * contacts["sms_hall"] + 0.15 * np.log1p(_col(frame, "sms_count")) - 0.5,
            0.9 * contacts["business_hall"] + 0.6 * feature_phone + 0.3 * vip - 0.4,
            0.9 * contacts["outbound"] + 1.5 * response - 1.2,
        ]
    )
    utility -= utility.max(axis=1, keepdims=True)
    expu = np.exp(utility)
    return expu / expu.sum(axis=1, keepdims=True)


def truth_for_snapshot(
    indicators: pd.DataFrame, world: World, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Oracle probabilities and labels drawn from them, for one snapshot's customers."""
    n = len(indicators)
    key = indicators[["msisdn", "event_timestamp"]].reset_index(drop=True)
    grade_p = credit_grade_probabilities(indicators)
    tariff = tariff_sensitivity_expected(indicators)
    complaint = complaint_sensitivity_expected(indicators)
    churn_p = churn_probability(indicators, world)
    channel_p = channel_probabilities(indicators)

    oracle = key.copy()
    for k, (code, _, _) in enumerate(CREDIT_GRADES):
        oracle[f"p_credit_grade_{code}"] = grade_p[:, k]
    oracle["tariff_sensitivity_expected"] = tariff
    oracle["complaint_sensitivity_expected"] = complaint
    oracle["churn_probability"] = churn_p
    for k, c in enumerate(CHANNELS):
        oracle[f"p_channel_{c}"] = channel_p[:, k]

    def draw(p: np.ndarray) -> np.ndarray:
        return (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, p.shape[1] - 1)

    labels = key.copy()
    labels["credit_grade"] = np.array([g[0] for g in CREDIT_GRADES])[draw(grade_p)]
    labels["tariff_sensitivity"] = np.clip(tariff + rng.normal(0, SENSITIVITY_NOISE_SD, n), 0, 100)
    labels["complaint_sensitivity"] = np.clip(complaint + rng.normal(0, SENSITIVITY_NOISE_SD, n), 0, 100)
    labels["churned_next_month"] = (rng.random(n) < churn_p).astype(np.int64)
    labels["preferred_channel"] = np.array(CHANNELS)[draw(channel_p)]
    return oracle, labels
