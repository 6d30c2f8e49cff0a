"""The synthetic world's truth: label probabilities as known functions of indicators.

Each function reads only indicators in its task's feature contract (``INPUTS``), so
the probabilities it returns are the best any model can achieve from what it sees:
the oracle. Labels are drawn from them with independent noise. Written to the truth
tables, never to the feature store. The credit outcome (``credit_bad_event``) is not drawn
here: the generator computes it from the credit events it writes (``features.outcomes``),
whose rate follows the credit score (``features.evidence``); its oracle probability is
``p_credit_bad_event``.

The truths have the structure real behaviour has, not that of a generalized linear
model: interactions (a bill increase matters more to prepaid, low-tenure customers;
complaints weigh more after an unresolved one), thresholds and saturation (the third
complaint in a quarter, habitual use of a channel), non-monotone effects the business
knows (very high data users churn to competitors' unlimited plans; mass-market bills
are watched more closely than the smallest and the largest), effects that differ by
province and a ratio a province's custom indicator exposes. Each effect is a named
term below; the README's "The synthetic world's truths" lists them beside their
indicators, and ``benchmarks/truth_gap.py`` measures how far a linear model of the same
indicators falls short of the oracle while a tree model does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import indicators as lib
from core.indicators import CHANNEL_PREFERENCE, CHANNELS, CHURN, CREDIT_GRADE, SENSITIVITY
from core.tasks import CREDIT_GRADES
from features.evidence import bad_event_probability
from features.outcomes import DEFAULT_OUTCOME

#: Ordered-logit cut points and scale: P(grade <= k) = sigmoid((cut_k - score) / scale).
CREDIT_CUTS = np.array([-0.32, 0.87, 2.7, 3.92])
CREDIT_SCALE = 0.45
#: A new line's credit score before it has a history: the middle of the average grade.
CREDIT_NEUTRAL = 1.8
#: Months over which a new line earns its profile's credit (it starts at ``CREDIT_NEUTRAL``).
CREDIT_PROBATION_MONTHS = 6
SENSITIVITY_NOISE_SD = 8.0
#: Churn's intercept: on the generator's steady base (closed lines replaced by new ones) the
#: average is about 2.5% a month, the operators' published 2-3%, higher in the Spring
#: Festival and summer months (roaming bills) and in the drift month.
CHURN_INTERCEPT = -4.85

#: A line's bill change compares with three whole months from its fourth month on.
FULL_HISTORY_MONTHS = 4
#: Tenure months in which a postpaid contract ends, one or two years in (and the month after).
CONTRACT_END_MONTHS = (12, 13, 24, 25)
#: Province effects: a multiplier on one named effect for a province's customers ("a
#: province's customers react differently to the same change"). Applied only for the
#: evaluations whose models read ``province`` (``PROVINCE_INPUT``, the library's word): a
#: truth reads only what its model sees.
PROVINCE_EFFECTS: dict[str, dict[str, float]] = {
    "HE": {"bill_increase": 1.7},  # churn: Hebei's prepaid mass market leaves over the same increase
    "GD": {"heavy_data": 1.6},  # churn: Guangdong's heavy data users meet more unlimited-plan offers
    "SC": {"tariff_increase": 1.5},  # tariff sensitivity: Sichuan's customers watch increases more
    "ZJ": {"unresolved": 1.5},  # complaint sensitivity: an unresolved complaint weighs more in Zhejiang
}
#: The evaluations whose models read ``province`` (sensitivity and churn).
PROVINCE_INPUT: frozenset[str] = frozenset(e for e in lib.EVALUATIONS if e in lib.BY_ID["province"].used_by)

_INPUTS: dict[str, tuple[str, ...]] = {
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
        "days_since_last_complaint",
        "business_dependence",
        "customer_category",
        "data_mb",
        "voice_minutes",
        "roaming_minutes_3m",
        "billing_inquiry_count_3m",
    ),
    CHANNEL_PREFERENCE: (
        "terminal_class",
        "data_mb",
        "sms_count",
        "brand",
        "payment_method",
        "customer_category",
        "complaint_count_3m",
        "outbound_response_rate_12m",
        *(f"contacts_{c}_3m" for c in CHANNELS),
    ),
}
#: Each evaluation's indicators its truth reads: a subset of the model's feature contract.
INPUTS: dict[str, tuple[str, ...]] = {
    e: (*cols, "province") if e in PROVINCE_INPUT else cols for e, cols in _INPUTS.items()
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


def _is(frame: pd.DataFrame, name: str, *codes: str) -> np.ndarray:
    return frame[name].astype(str).isin(codes).to_numpy(float)


def _ramp(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 below ``low``, 1 above ``high``, linear between: a threshold with saturation."""
    return np.clip((x - low) / (high - low), 0.0, 1.0)


def _satisfaction_gap(frame: pd.DataFrame) -> np.ndarray:
    """Satisfaction minus the scale's middle; 0 when the customer answered no survey."""
    return np.nan_to_num(_col(frame, "complaint_satisfaction") - 3.0)


def _unhappy(frame: pd.DataFrame) -> np.ndarray:
    """1 when the customer rated the handling of their complaints 2 or worse (a survey answered)."""
    return (np.nan_to_num(_col(frame, "complaint_satisfaction"), nan=5.0) <= 2.0).astype(float)


def _vip(frame: pd.DataFrame) -> np.ndarray:
    return frame["customer_category"].astype(str).str.startswith("vip").to_numpy(float)


def province_factor(frame: pd.DataFrame, evaluation: str, effect: str) -> np.ndarray:
    """The multiplier of ``effect`` per customer: the province's own (``PROVINCE_EFFECTS``) when
    the evaluation's models read ``province``, else 1."""
    if evaluation not in PROVINCE_INPUT:
        return np.ones(len(frame))
    factors = {p: e.get(effect, 1.0) for p, e in PROVINCE_EFFECTS.items()}
    return frame["province"].astype(str).map(factors).fillna(1.0).to_numpy(float)


# -- credit ------------------------------------------------------------------------------------


def refund_to_bill_ratio(frame: pd.DataFrame) -> np.ndarray:
    """Refunds of 12 months over three months of the current bill: the share of what the
    customer pays that comes back as refunds (a custom indicator a province can expose)."""
    return _col(frame, "refund_amount_12m") / (3.0 * _col(frame, "monthly_consumption") + 1.0)


def credit_complaint_penalty(count_3m: np.ndarray) -> np.ndarray:
    """Complaints of a quarter on the credit score: the third is a step (a habitual
    complainer), the first two and any beyond the third weigh little."""
    c = np.asarray(count_3m, dtype=float)
    return 0.15 * np.minimum(c, 2) + 2.0 * (c >= 3) + 0.05 * np.clip(c - 3, 0, 4)


def credit_score(frame: pd.DataFrame) -> np.ndarray:
    """Latent credit score (higher is better) from the 15 credit indicators."""
    category = (
        frame["customer_category"]
        .map({"individual": 0.0, "group_member": 0.3, "vip_silver": 0.7, "vip_gold": 1.0, "vip_diamond": 1.3})
        .to_numpy(float)
    )
    prepaid = _is(frame, "payment_method", "prepaid")
    bank = _is(frame, "payment_method", "bank_debit")
    brand = frame["brand"].map({"gotone": 0.2, "mzone": 0.0, "easyown": -0.1}).to_numpy(float)
    tenure = _col(frame, "tenure_months")
    complaints_3m = _col(frame, "complaint_count_3m")
    # payment record: tenure is a record of paid bills for postpaid customers, and two years
    # of it is a step; a prepaid customer's tenure says little
    record = np.log1p(np.minimum(tenure, 120)) * (0.1 + 0.25 * (1 - prepaid)) + 0.5 * (1 - prepaid) * (
        tenure >= 24
    )
    # spending saturates: above about 150 yuan a month more adds nothing
    spend = 0.8 * _ramp(np.log1p(_col(frame, "monthly_consumption")), np.log(25), np.log(150))
    # arrears: one month is an oversight, forgiven; the third in a year is a habit (a step).
    # A prepaid line's arrears are a negative balance, a failed bank debit weighs most
    arrears = _col(frame, "arrears_months_12m")
    arrears_penalty = (0.4 * (arrears >= 2) + 2.2 * (arrears >= 3)) * (0.4 + 0.6 * (1 - prepaid) + 0.5 * bank)
    # complaints: the third in a quarter; doubled when the customer rejected the handling
    complaints = credit_complaint_penalty(complaints_3m) * (1.0 + 1.0 * _unhappy(frame))
    # refunds: what comes back relative to what is paid (a ratio), and any double refund
    refunds = 0.3 * np.minimum(_col(frame, "refund_count_12m"), 2) + 2.0 * _ramp(
        refund_to_bill_ratio(frame), 0.05, 0.4
    )
    double = 2.0 * (_col(frame, "double_refund_count_12m") > 0)
    # Monternet/SP ports are the classic disputed charge: they count only with complaints
    ports = 0.3 * np.minimum(_col(frame, "monternet_port_count"), 4) * (complaints_3m > 0)
    # what the customer has earned: profile, record, spending, circle, services
    earned = (
        category
        + 0.2 * (1 - prepaid)
        + 0.2 * bank
        + brand
        + record
        + spend
        + 0.4 * (_col(frame, "complaint_satisfaction") >= 4)
        + 0.15 * _col(frame, "number_level")
        + 0.3 * _ramp(np.log1p(_col(frame, "influence")), np.log(6), np.log(40))
        + 0.08 * np.minimum(_col(frame, "business_dependence"), 5)
    )
    # a new line has earned nothing yet: it starts at the average grade and earns its place
    # over its first half year (bad conduct counts from the first day)
    history = _ramp(tenure, 0, CREDIT_PROBATION_MONTHS)
    return (
        CREDIT_NEUTRAL
        + history * (earned - CREDIT_NEUTRAL)
        - arrears_penalty
        - complaints
        - refunds
        - double
        - ports
    )


def credit_grade_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """P(grade = 1..5) per customer, shape (n, 5), by an ordered logit on the credit score."""
    score = credit_score(frame)
    cumulative = _sigmoid((CREDIT_CUTS[None, :] - score[:, None]) / CREDIT_SCALE)
    cumulative = np.hstack([np.zeros((len(score), 1)), cumulative, np.ones((len(score), 1))])
    return np.diff(cumulative, axis=1)


# -- sensitivity -------------------------------------------------------------------------------


def tariff_increase_reaction(frame: pd.DataFrame) -> np.ndarray:
    """How much the last bill's increase sharpens attention to charges: only increases
    count (a cheaper month changes nothing), more for prepaid customers and small budgets."""
    increase = np.clip(_col(frame, "bill_change_ratio"), 0.0, 1.5)
    payment = frame["payment_method"].map({"prepaid": 2.2, "postpaid_cash": 1.0, "bank_debit": 0.2})
    small_budget = 1.0 - _ramp(np.log1p(_col(frame, "arpu_3m")), np.log(30), np.log(150))
    return increase * payment.to_numpy(float) * (0.5 + 1.0 * small_budget)


def tariff_sensitivity_expected(frame: pd.DataFrame) -> np.ndarray:
    """Expected tariff sensitivity (0-100): billing inquiries and reactions to charges."""
    inquiries = _col(frame, "billing_inquiry_count_3m")
    log_arpu = np.log1p(_col(frame, "arpu_3m"))
    postpaid = 1.0 - _is(frame, "payment_method", "prepaid")
    return 100 * _sigmoid(
        -1.6
        # checking the bill is habit from about four inquiries a quarter; beyond eight, no more
        + 1.8 * _ramp(inquiries, 1, 4)
        + 0.5 * _ramp(inquiries, 4, 8)
        # a postpaid customer has a bill to check: the same inquiries mean less than a prepaid
        # customer's balance checks
        - 0.6 * postpaid * _ramp(inquiries, 1, 4)
        + 1.3 * tariff_increase_reaction(frame) * province_factor(frame, SENSITIVITY, "tariff_increase")
        # mass-market bills (30-80 yuan) are watched most; the smallest and the largest least
        - 1.4 * (log_arpu - np.log(50)) ** 2
        # a billing complaint is a step: the first says it, more add little
        + 1.0 * (_col(frame, "billing_complaint_count_12m") > 0)
        + 0.2 * np.minimum(_col(frame, "billing_complaint_count_12m"), 3)
        + 0.3 * _is(frame, "brand", "easyown")
    )


def complaint_voice(frame: pd.DataFrame) -> np.ndarray:
    """How readily a customer voices a problem as a complaint: high-value and GoTone customers
    expect more of the service; prepaid Easyown customers rarely complain, they leave."""
    # expectations rise with value up to about 120 yuan a month; above it account managers
    # look after the customer and problems rarely reach a complaint
    value = np.exp(-0.5 * ((np.log1p(_col(frame, "arpu_3m")) - np.log(120)) / 0.5) ** 2)
    return (
        0.35
        + 2.4 * value
        + 0.5 * _is(frame, "brand", "gotone")
        - 0.25 * _is(frame, "brand", "easyown") * _is(frame, "payment_method", "prepaid")
    )


def complaint_sensitivity_expected(frame: pd.DataFrame) -> np.ndarray:
    """Expected complaint sensitivity (0-100) from complaint history."""
    days = _col(frame, "days_since_last_complaint")
    recent = np.where(np.isnan(days), 0.0, np.exp(-np.nan_to_num(days) / 45.0))
    hotline = _col(frame, "contacts_hotline_10086_3m")
    # an unresolved complaint (escalated, or handling rated 2 or worse) makes every complaint weigh more
    unresolved = np.maximum((_col(frame, "escalated_complaint_count_12m") > 0).astype(float), _unhappy(frame))
    weight = 1.0 + 1.3 * unresolved * province_factor(frame, SENSITIVITY, "unresolved")
    # problems met without a complaint: calling 10086 is a habit from three calls a quarter,
    # unless the bill just went up (then the calls are billing questions)
    problems = 1.6 * _ramp(hotline, 0, 3) * (1.0 - _ramp(_col(frame, "bill_change_ratio"), 0.05, 0.4))
    # checking the bill and then calling about it: a dispute in the making
    dispute = 0.8 * _ramp(_col(frame, "billing_inquiry_count_3m"), 1, 5) * _ramp(hotline, 0, 3)
    return 100 * _sigmoid(
        -3.1
        + 0.8 * np.log1p(_col(frame, "complaint_count_12m")) * weight
        # the third complaint in a quarter is the step
        + 1.2 * (_col(frame, "complaint_count_3m") >= 3)
        + 1.0 * recent
        # calls right after a complaint are chasing it
        + 0.6 * np.log1p(hotline) * recent
        # a problem becomes sensitivity as far as the customer voices problems
        + (0.15 + problems + dispute) * complaint_voice(frame)
        - 0.3 * _satisfaction_gap(frame)
        + 0.3 * np.log1p(_col(frame, "billing_complaint_count_12m"))
    )


# -- churn -------------------------------------------------------------------------------------


def churn_bill_increase(frame: pd.DataFrame) -> np.ndarray:
    """Churn pressure of the last bill's increase: strong for prepaid customers in their
    first year (nothing ties them), weak for long-tenure postpaid ones; roaming makes it
    bite harder in border cities (competitors' national plans have no roaming charges).
    A line's first months compare a full bill with partial ones: no increase is felt before
    ``FULL_HISTORY_MONTHS``."""
    tenure = _col(frame, "tenure_months")
    increase = np.clip(_col(frame, "bill_change_ratio"), 0.0, 2.0) * (tenure >= FULL_HISTORY_MONTHS)
    prepaid = _is(frame, "payment_method", "prepaid")
    new = np.exp(-np.maximum(tenure - FULL_HISTORY_MONTHS, 0) / 12.0)
    roaming = _ramp(_col(frame, "roaming_minutes_3m"), 30, 200)
    return increase * (0.25 + 1.0 * prepaid) * (0.3 + 2.2 * new) * (1.0 + 0.8 * roaming)


def churn_heavy_data(frame: pd.DataFrame) -> np.ndarray:
    """Churn pressure of data use, non-monotone: engaged users stay, but very high data
    users (from about 18 GB a month, the top few percent) leave for competitors' unlimited
    plans. A missing data feed counts as 1 GB."""
    gb = np.nan_to_num(_col(frame, "data_mb"), nan=1024.0) / 1024.0
    return -0.2 * np.log1p(np.minimum(gb, 10)) + 4.0 * _sigmoid(3.0 * (np.log(gb + 1e-3) - np.log(18)))


def churn_probability(frame: pd.DataFrame, world: World) -> np.ndarray:
    """P(the line closes in the month after the snapshot)."""
    mzone = _is(frame, "brand", "mzone")
    prepaid = _is(frame, "payment_method", "prepaid")
    tenure = _col(frame, "tenure_months")
    complaints = _col(frame, "complaint_count_3m")
    days = _col(frame, "days_since_last_complaint")
    decline = -np.clip(_col(frame, "bill_change_ratio"), -1.0, 0.0)
    dependence = _col(frame, "business_dependence")
    inquiries = _col(frame, "billing_inquiry_count_3m")
    voice = _col(frame, "voice_minutes")
    logit = (
        CHURN_INTERCEPT
        # early life: a prepaid line's first months are the riskiest; a postpaid line is held
        # by its contract for the first year, and the contract's end (12 or 24 months) frees
        # the customer for two months; loyalty grows slowly
        + 1.0 * prepaid * np.exp(-tenure / 4.0)
        - 1.0 * (1.0 - prepaid) * (tenure < 12)
        + 2.4 * (1.0 - prepaid) * np.isin(tenure, CONTRACT_END_MONTHS)
        - 0.25 * np.log1p(tenure)
        + 1.0 * churn_bill_increase(frame) * province_factor(frame, CHURN, "bill_increase")
        # a falling bill: usage moving to another number before this one closes
        + 4.0 * _ramp(decline, 0.2, 0.7)
        # a silent line (almost no calls, almost no data): a second SIM about to be dropped
        + 1.2 * (voice < 20) * (np.nan_to_num(_col(frame, "data_mb"), nan=1e9) < 200)
        # shopping around: many billing inquiries after an increase
        + 0.5 * _ramp(inquiries, 2, 6) * (_col(frame, "bill_change_ratio") > 0.2)
        + churn_heavy_data(frame) * (1.0 + 0.5 * mzone) * province_factor(frame, CHURN, "heavy_data")
        # complaints: the third in a quarter, and an unresolved one (rated 2 or worse) far more
        + 0.3 * np.minimum(complaints, 2)
        + 0.7 * (complaints >= 3)
        + 1.3 * _unhappy(frame) * (complaints > 0)
        + 0.5 * np.where(np.isnan(days), 0.0, np.nan_to_num(days) <= 30)
        # suspended for arrears: a prepaid line left suspended is rarely topped up again
        + 0.6 * (_col(frame, "arrears_suspensions_12m") > 0) * (1.0 + 1.5 * prepaid)
        + 0.1 * np.minimum(_col(frame, "arrears_months_12m"), 4)
        # business dependence binds: each service up to five, none beyond
        - 0.35 * (np.minimum(dependence, 5) - 3)
        + 0.3 * mzone
        + 0.3 * prepaid
        - 0.5 * _vip(frame)
        - 0.4 * _col(frame, "red_list_flag")
        # the drift switch: a competitor's offer to the young, and a tariff change that sends
        # the customers nothing ties (prepaid) shopping around
        + (1.3 * mzone if world.competitor_offer else 0.0)
        + (0.5 * prepaid if world.tariff_change else 0.0)
    )
    return _sigmoid(logit)


# -- channel preference ------------------------------------------------------------------------


def channel_habit(contacts_3m: np.ndarray) -> np.ndarray:
    """A channel used in a quarter: each use counts, and from three uses it is a habit
    (a step); beyond six nothing more."""
    c = np.asarray(contacts_3m, dtype=float)
    return 0.35 * np.minimum(c, 6) + 0.7 * (c >= 3)


def channel_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """P(preferred channel = c) for c in CHANNELS, shape (n, 5), by a multinomial logit."""
    smartphone = _is(frame, "terminal_class", "smartphone_4g", "smartphone_5g")
    feature_phone = _is(frame, "terminal_class", "feature_phone")
    vip = _vip(frame)
    gb = np.nan_to_num(_col(frame, "data_mb"), nan=0.0) / 1024.0
    known = ~np.isnan(_col(frame, "outbound_response_rate_12m"))
    response = np.nan_to_num(_col(frame, "outbound_response_rate_12m"))
    habit = {c: channel_habit(_col(frame, f"contacts_{c}_3m")) for c in CHANNELS}
    mass_market = _is(frame, "brand", "easyown") * _is(frame, "payment_method", "prepaid")
    utility = np.column_stack(
        [
            # the app needs a smartphone: data use counts only on one
            habit["online_hall"]
            + smartphone * (0.3 + 0.6 * _ramp(np.log1p(gb), np.log1p(0.5), np.log1p(8)))
            - 1.2 * feature_phone
            + 0.3 * _is(frame, "brand", "mzone"),
            # complainers call: a complaint in the quarter draws to the hotline
            habit["hotline_10086"] + 0.3 + 0.6 * (_col(frame, "complaint_count_3m") > 0),
            habit["sms_hall"] + 0.5 * feature_phone * _ramp(_col(frame, "sms_count"), 20, 60) - 0.5,
            # the business hall: feature-phone mass-market customers, and VIPs' own counters
            habit["business_hall"] + 0.9 * feature_phone * mass_market + 0.5 * vip - 0.5,
            # outbound: only for customers who answer; not knowing is not answering
            habit["outbound"] + 2.0 * known * _ramp(response, 0.3, 0.8) - 1.3,
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
    # the credit outcome's truth: credit events follow the same score (features.evidence)
    oracle["p_credit_bad_event"] = bad_event_probability(
        credit_score(indicators), churn_p, DEFAULT_OUTCOME.horizon_months
    )
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
