"""Drift flags know their sample size: a small week's noise is not drift, a real shift is."""

from __future__ import annotations

import numpy as np
import pandas as pd


def test_small_samples_do_not_drift_by_noise_and_real_shifts_do():
    """The distance alone flags a small week's noise; the test at the week's size does not."""
    from monitoring.drift import Thresholds, drift_report

    rng = np.random.default_rng(1)
    columns = ["monthly_consumption", "arpu_3m", "billing_inquiry_count_3m", "contacts_hotline_10086_3m"]

    def frame(n, shift=0.0):
        data = {c: rng.gamma(2.0, 40.0, n) * (1 + shift) for c in columns[:2]}
        data |= {c: rng.poisson(1.5 + 3 * shift, n).astype(float) for c in columns[2:]}
        return pd.DataFrame(data).assign(pred_tariff_sensitivity=rng.uniform(0, 100, n))

    reference = frame(5_000)
    kwargs = dict(province="HE", week="2026-W20", model="m", version="1")
    task = "tariff_sensitivity"
    noisy = [
        drift_report(reference, frame(40), task, columns, Thresholds(), False, **kwargs)[1] for _ in range(20)
    ]
    by_distance = sum(max(d.feature_scores.values()) >= 0.1 for d in noisy)
    flagged = sum(d.drifted_features > 0 for d in noisy)
    assert by_distance >= 15  # the distance alone would flag almost every small week
    # at 95% over the indicators, at most about 1 in 20 weeks of noise flags any indicator
    assert flagged <= 2, [d.feature_p_values for d in noisy]
    shifted = drift_report(
        reference, frame(2_000, 0.4), "tariff_sensitivity", columns, Thresholds(), False, **kwargs
    )
    assert shifted[1].drifted_features == len(columns)
    assert all(m.p_value < shifted[1].indicator_alpha for m in shifted[1].moved)


def test_quality_intervals_know_the_sample_size_and_survive_one_class_resamples():
    from core.tasks import TASKS
    from monitoring.model_quality import outcome_rate_change, quality_change

    t = TASKS["churn"]
    rng = np.random.default_rng(3)

    def week(n, noise=0.0):
        p = rng.beta(1, 20, n)
        y = (rng.random(n) < p).astype(float)
        flip = rng.random(n) < noise
        y[flip] = rng.permutation(y[flip])
        return y, p

    reference = week(4_000)
    small = quality_change(t, *reference, *week(300))
    large = quality_change(t, *reference, *week(20_000, noise=0.5))
    assert small.high - small.low > 2 * (large.high - large.low)  # a small week is less sure
    assert large.low > 0.05  # half the labels scrambled: a drop, and sure of it
    # three churners among 200: most resamples have a class missing; still an answer, no crash
    y, p = np.zeros(200), rng.uniform(0, 0.1, 200)
    y[:3] = 1
    tiny = quality_change(t, y, p, y, p)
    assert np.isfinite(tiny.low) and tiny.low <= 0 <= tiny.high
    # the outcome rate: twice the churners the model expects is caught, the model's own rate is not
    same = outcome_rate_change(t, *reference, *week(5_000))
    y, p = week(5_000)
    doubled = outcome_rate_change(t, *reference, np.maximum(y, rng.random(5_000) < p), p)
    assert same.p_value > 0.01 and doubled.change > 0.5 and doubled.p_value < 1e-6
