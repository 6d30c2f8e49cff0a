"""Model quality in the business's terms, and as a fraction of the best achievable.

Every metric is computed twice on the same test month: for the model, and for the
generator's oracle probabilities. The model-to-oracle ratio of the headline metric is
the statement of model quality. Which metrics and charts a model gets is its kind's
(``core.kinds``); this module compares and draws them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.tasks import Task


def metrics(t: Task, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """All of a task's metrics for labels ``y`` and predictions ``p`` (model or oracle)."""
    return t.kind.metrics(y, p)


def oracle_predictions(t: Task, frame: pd.DataFrame) -> np.ndarray:
    """The oracle's probabilities (or expected score) in the model's output shape."""
    values = frame[list(t.oracle_columns)].to_numpy(dtype=float)
    return values[:, 0] if len(t.oracle_columns) == 1 else values


def has_oracle(t: Task, frame: pd.DataFrame) -> bool:
    """Whether the rows carry the generator's oracle (a province's own data does not)."""
    return (
        all(c in frame.columns for c in t.oracle_columns)
        and not frame[list(t.oracle_columns)].isna().any().any()
    )


def compare_with_oracle(t: Task, y: np.ndarray, model_p: np.ndarray, frame: pd.DataFrame) -> dict[str, float]:
    """Model metrics, oracle metrics on the same rows, the headline ratio (NaN without an oracle),
    and the model against the truth itself where the kind has such metrics (``truth_``)."""
    model = metrics(t, y, model_p)
    out = {f"test_{k}": v for k, v in model.items()}
    if not has_oracle(t, frame):
        out["oracle_ratio"] = float("nan")
        return out
    oracle_p = oracle_predictions(t, frame)
    oracle = metrics(t, y, oracle_p)
    out.update({f"oracle_{k}": v for k, v in oracle.items()})
    out.update({f"truth_{k}": v for k, v in t.kind.truth_metrics(model_p, oracle_p).items()})
    out["oracle_ratio"] = model[t.headline] / oracle[t.headline] if oracle[t.headline] else float("nan")
    return out


def plots(t: Task, y: np.ndarray, p: np.ndarray, oracle_p: np.ndarray | None, directory: Path) -> list[Path]:
    """The task's evaluation charts as PNG files (the oracle's curves where there is one)."""
    directory.mkdir(parents=True, exist_ok=True)
    return t.kind.plots(t, y, p, oracle_p, directory)
