"""Has the champion's quality dropped in a province this week, and how sure is that?

Pure: labels and model outputs in, a ``QualityChange`` out. The week's headline metric
(QWK, Spearman, AUC, top-1) is compared with the same metric on the province's own
held-out reference rows (the champion's test month, never rows it was fitted on). Both
are samples, so the relative drop gets an interval by bootstrapping each sample
independently: a week of 300 customers that scores 12% lower can be within its noise; a
week of 5,000 that scores 12% lower is not. (The weekly job also asks the drop to reach
the minimum effect, ``quality_drop``.)

For an event model (churn) the matured labels also say whether the event is as frequent as
the model expects: a competitor's offer can double churn without moving any indicator the
model reads, and only the outcome shows it (``outcome_rate_change``, a binomial test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from core.bootstrap import RESAMPLES, resampled_scores
from core.bootstrap import score as _score
from core.tasks import Task


@dataclass(frozen=True)
class QualityChange:
    metric: str
    reference: float
    current: float
    #: relative drop (reference - current) / |reference|, and its interval at ``confidence``
    drop: float
    low: float
    high: float
    reference_rows: int
    current_rows: int


def _resampled(t: Task, y: np.ndarray, p: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    return resampled_scores(t, y, [p], rng, n)[:, 0]


def quality_change(
    t: Task,
    y_reference: np.ndarray,
    p_reference: np.ndarray,
    y_current: np.ndarray,
    p_current: np.ndarray,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> QualityChange:
    """The week's score against the reference's, with the drop's bootstrap interval.

    ``y_*`` are labels as the task's kind encodes them, ``p_*`` the model's outputs
    (``TaskModel.probabilities``). A resample whose metric cannot be computed (one class
    only) is left out of the interval."""
    reference, current = _score(t, y_reference, p_reference), _score(t, y_current, p_current)
    scale = abs(reference) or 1.0
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        drops = (
            _resampled(t, y_reference, p_reference, rng, resamples)
            - _resampled(t, y_current, p_current, rng, resamples)
        ) / scale
    drops = drops[np.isfinite(drops)]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(drops, [tail, 100 - tail]) if len(drops) else (np.nan, np.nan)
    return QualityChange(
        t.headline,
        reference,
        current,
        (reference - current) / scale,
        float(low),
        float(high),
        len(y_reference),
        len(y_current),
    )


@dataclass(frozen=True)
class RateChange:
    #: the week's event rate the model expects, corrected by its record on the held-out rows
    expected: float
    observed: float
    #: (observed / expected this week) / (observed / expected on the held-out rows) - 1
    change: float
    p_value: float
    customers: int


def outcome_rate_change(
    t: Task, y_reference: np.ndarray, p_reference: np.ndarray, y_current: np.ndarray, p_current: np.ndarray
) -> RateChange | None:
    """Whether the week's events (churners) outnumber or fall short of what the model expects,
    more than on the province's held-out rows (a model a little off for a province is off
    every week: that is not news); None for kinds whose outputs are not a rate, or without
    events on the held-out rows.

    The test compares two Poisson rates, observed over expected events in the week and on the
    held-out rows: given the events of both, the week's count is binomial with the week's
    share of the expected events (``scipy.stats.binomtest``)."""
    if t.kind.expected_rate(p_current) is None or not len(y_current):
        return None
    expected_week, expected_reference = float(np.sum(p_current)), float(np.sum(p_reference))
    events_week, events_reference = int(np.nansum(y_current)), int(np.nansum(y_reference))
    if events_reference == 0 or expected_week <= 0 or expected_reference <= 0:
        return None
    record = events_reference / expected_reference  # observed / expected on the held-out rows
    share = expected_week / (expected_week + expected_reference)
    p_value = binomtest(events_week, events_week + events_reference, share).pvalue
    return RateChange(
        expected_week * record / len(y_current),
        events_week / len(y_current),
        (events_week / expected_week) / record - 1,
        float(p_value),
        len(y_current),
    )
