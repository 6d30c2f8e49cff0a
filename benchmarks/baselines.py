"""Baselines for the training benchmark: what an untuned XGBoost and a linear model reach.

The models are the training run's own (``training.baselines``: fitted on the very
``Dataset`` a task trained on, judged by the kind's calibration and metrics on the same
held-out rows); this module records them for the benchmark's report and states issue 19's
goal.
"""

from __future__ import annotations

import numpy as np

from training.baselines import BASELINES, LinearDesign, judge_baselines

__all__ = ["BASELINES", "LinearDesign", "run_baselines", "goal"]


def _record(t, metrics: dict, seconds: float) -> dict:
    return {
        "metric": t.headline,
        "value": metrics[f"test_{t.headline}"],
        "ratio": metrics["oracle_ratio"] if np.isfinite(metrics["oracle_ratio"]) else None,
        "seconds": seconds,
        "metrics": {k: v for k, v in metrics.items() if k.startswith("test_")},
    }


def run_baselines(data, budget) -> dict:
    """Both baselines of one task, as the training run fits them; one that cannot be fitted
    is recorded as an error and the other still runs."""
    fitted = judge_baselines(data, budget)
    return {
        key: _record(data.task, fitted[key].metrics, fitted[key].seconds)
        if key in fitted
        else {"error": "could not be fitted (see the warning above)"}
        for key in BASELINES
    }


def goal(tasks: dict, tuned_target: float = 0.97, linear_ceiling: float = 0.90, needed: int = 3) -> dict:
    """Issue 19's goal: the tuned model >= 0.97 of the oracle on every task, while the
    logistic/linear baseline stays below 0.90 of it on at least three of the five."""
    tuned = [r.get("ratio") for r in tasks.values()]
    linear = [(r.get("baselines") or {}).get("logistic", {}).get("ratio") for r in tasks.values()]
    untuned = [(r.get("baselines") or {}).get("untuned_xgboost", {}).get("ratio") for r in tasks.values()]
    known_tuned = [x for x in tuned if x is not None]
    known_linear = [x for x in linear if x is not None]
    below = sum(x < linear_ceiling for x in known_linear)
    tuned_ok = bool(tasks) and len(known_tuned) == len(tasks) and min(known_tuned) >= tuned_target
    return {
        "tuned_target": tuned_target,
        "linear_ceiling": linear_ceiling,
        "needed": needed,
        "tasks": len(tasks),
        "tuned_min_ratio": min(known_tuned, default=None),
        "tuned_pass": tuned_ok,
        "untuned_min_ratio": min((x for x in untuned if x is not None), default=None),
        "logistic_max_ratio": max(known_linear, default=None),
        "logistic_below": below,
        "logistic_measured": len(known_linear),
        "logistic_pass": below >= needed,
        "goal_met": tuned_ok and below >= needed,
    }
