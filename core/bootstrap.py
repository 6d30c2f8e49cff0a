"""The bootstrap both the champion gate and the weekly alerts use: a metric on resampled rows.

Several predictions of the same rows are scored on the same resamples (paired), so a
difference between two models is judged on the same customers each time.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from core.tasks import Task

#: Resamples per bootstrap; interval ends are percentiles of the resampled figures.
RESAMPLES = 200


def score(t: Task, y: np.ndarray, p: np.ndarray) -> float:
    """The task's headline metric."""
    return float(t.kind.metrics(y, p)[t.headline])


def resampled_scores(
    t: Task, y: np.ndarray, predictions: Sequence[np.ndarray], rng: np.random.Generator, n: int = RESAMPLES
) -> np.ndarray:
    """(n, models): the headline metric of each prediction on the same ``n`` resamples of the
    rows. A resample whose metric cannot be computed (one class only) is NaN."""
    scores = np.empty((n, len(predictions)))
    with warnings.catch_warnings():  # a resample with one class only: sklearn warns, NaN or raises
        warnings.simplefilter("ignore")
        for k in range(n):
            i = rng.integers(0, len(y), len(y))
            for m, p in enumerate(predictions):
                try:
                    scores[k, m] = score(t, y[i], p[i])
                except ValueError:
                    scores[k, m] = np.nan
    return scores
