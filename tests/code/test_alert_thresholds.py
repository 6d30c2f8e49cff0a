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
