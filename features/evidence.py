"""The synthetic world's credit evidence and small gifts: how many, of which kind, for whom.

Pure functions the generator (``features.generate``) draws the ``credit_events`` and
``small_gifts`` tables with. Both follow the latent credit score of the truth
(``features.labels.credit_score``, the one the oracle grades with), read at the last
snapshot before the month (what the operator knew when the month began):

* credit events (complaints verified unfounded, refunds reversed, double refunds found,
  arrears written off) come at a monthly Poisson rate that falls steeply with the score
  (``credit_event_rate``): a customer of extremely poor credit has about one a year, one of
  excellent credit about one in forty years. Black-list entries are the red/black list's
  own (``listing_events``), one source for both tables;
* small gifts go to good credit (差异化投诉处理: goodwill and care for the best grades):
  goodwill after a complaint, more likely the better the score, and customer care, more
  for VIPs and high scores.

So the outcome's truth is known: ``bad_event_probability`` is the oracle's chance of a
bad event within the horizon, given the snapshot's score and churn probability (the line
closes, its evidence stops), as if both held over the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.schemas import CREDIT_EVENT_TYPES, GIFT_REASONS

#: Credit events drawn from the score (the black-list entries come from the list itself).
RATE_EVENT_TYPES = CREDIT_EVENT_TYPES[:4]
#: Monthly rate of credit events: FLOOR + PEAK * sigmoid(-SLOPE * (score - MIDPOINT)).
EVENT_FLOOR = 0.002
EVENT_PEAK = 0.12
EVENT_SLOPE = 1.6
EVENT_MIDPOINT = 0.0
#: Goodwill gift after a complaint: P = GOODWILL_PEAK * sigmoid(GOODWILL_SLOPE * (score - 2.7)),
#: 2.7 being the cut between the average and the good grade.
GOODWILL_PEAK = 0.6
GOODWILL_SLOPE = 2.0
#: Monthly rate of customer-care gifts: CARE_RATE * (1 + VIP level) * sigmoid(score - 3.92).
CARE_RATE = 0.03
GOODWILL_AMOUNTS = np.array([5.0, 10.0, 20.0, 30.0, 50.0])
CARE_AMOUNTS = np.array([10.0, 20.0, 50.0, 100.0])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def credit_event_rate(score: np.ndarray) -> np.ndarray:
    """Expected credit events (of ``RATE_EVENT_TYPES``) in a whole month, by credit score."""
    s = np.asarray(score, dtype=float)
    return EVENT_FLOOR + EVENT_PEAK * _sigmoid(-EVENT_SLOPE * (s - EVENT_MIDPOINT))


def bad_event_probability(score: np.ndarray, churn: np.ndarray, horizon_months: int) -> np.ndarray:
    """P(at least one credit event in the ``horizon_months`` after the snapshot): each month the
    line is still open (it closes with the monthly ``churn`` probability) brings events at
    ``credit_event_rate``; score and churn probability taken to hold over the horizon."""
    miss = np.exp(-credit_event_rate(score))  # P(no event in an open month)
    stay = 1.0 - np.asarray(churn, dtype=float)
    none = (stay * miss) ** horizon_months  # open all along, no event
    for j in range(horizon_months):  # open j months without an event, then closed
        none = none + (stay * miss) ** j * (1.0 - stay)
    return 1.0 - none


def event_type_weights(history: pd.DataFrame) -> np.ndarray:
    """Weights (n, 4) of ``RATE_EVENT_TYPES`` per customer from the snapshot's indicators: an
    unfounded complaint for complainers, a reversed or double refund for the refunded,
    arrears written off for those with arrears."""
    complained = history["complaint_count_3m"].to_numpy(float) > 0
    refunded = history["refund_count_12m"].to_numpy(float) > 0
    doubled = history["double_refund_count_12m"].to_numpy(float) > 0
    arrears = history["arrears_months_12m"].to_numpy(float) > 0
    return np.column_stack(
        [
            1.0 + 2.0 * complained,
            0.3 + 1.5 * refunded,
            0.1 + 0.6 * refunded + 1.5 * doubled,
            0.3 + 2.0 * arrears,
        ]
    )


def event_amounts(kind: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The money of each event (index into ``CREDIT_EVENT_TYPES``): refunds taken back and debts
    written off in yuan; NaN for an unfounded complaint or a listing."""
    k = len(kind)
    refund = np.minimum(np.exp(rng.normal(3.0, 0.8, k)), 2_000)
    debt = np.minimum(np.exp(rng.normal(4.0, 0.7, k)), 5_000)
    amount = np.where(kind == CREDIT_EVENT_TYPES.index("arrears_written_off"), debt, refund)
    money = np.isin(kind, [CREDIT_EVENT_TYPES.index(t) for t in RATE_EVENT_TYPES[1:]])
    return np.where(money, np.round(amount, 2), np.nan)


def goodwill_probability(score: np.ndarray) -> np.ndarray:
    """P(a complaint's handling ends with a goodwill gift), by the customer's credit score."""
    return GOODWILL_PEAK * _sigmoid(GOODWILL_SLOPE * (np.asarray(score, dtype=float) - 2.7))


def care_rate(score: np.ndarray, vip_level: np.ndarray) -> np.ndarray:
    """Expected customer-care gifts in a whole month."""
    return CARE_RATE * (1.0 + np.asarray(vip_level, dtype=float)) * _sigmoid(np.asarray(score) - 3.92)


def gift_amounts(reason: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gift amounts in yuan (index into ``GIFT_REASONS``): small fixed sums, care gifts larger."""
    goodwill = GOODWILL_AMOUNTS[rng.integers(0, len(GOODWILL_AMOUNTS), len(reason))]
    care = CARE_AMOUNTS[rng.integers(0, len(CARE_AMOUNTS), len(reason))]
    return np.where(reason == GIFT_REASONS.index("customer_care"), care, goodwill)


def listing_events(red_black: pd.DataFrame, months: list[str]) -> pd.DataFrame:
    """The black-list entries of ``red_black`` listed within ``months``, as credit events (at the
    start of the listing day, no amount): the same listing the red/black list holds."""
    black = red_black[red_black["list_type"] == "black"]
    time = pd.to_datetime(black["listed_date"])
    inside = time.dt.strftime("%Y-%m").isin(months).to_numpy()
    return pd.DataFrame(
        {
            "msisdn": black["msisdn"].astype(str).to_numpy()[inside],
            "event_time": time.to_numpy()[inside].astype("datetime64[s]"),
            "event_type": "black_listed",
            "amount": np.nan,
        }
    )


__all__ = [
    "credit_event_rate",
    "bad_event_probability",
    "event_type_weights",
    "event_amounts",
    "goodwill_probability",
    "care_rate",
    "gift_amounts",
    "listing_events",
]
