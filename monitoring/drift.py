"""One model's week against its reference, with Evidently: feature, prediction and target drift.

``drift_report`` is pure apart from Evidently's computation: frames in, an Evidently
snapshot and a ``TaskDrift`` summary out. Every column is tested with the same kind of
distance (normed Wasserstein for numbers, Jensen-Shannon for categories; drift at 0.1,
Evidently's defaults for large samples), so scores rank across indicators and weeks
whatever the week's size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from core import indicators as lib
from core.tasks import TASKS

NUMERIC_METHOD = "wasserstein"
CATEGORY_METHOD = "jensenshannon"
COLUMN_DRIFT_THRESHOLD = 0.1


@dataclass(frozen=True)
class Thresholds:
    """When a week raises an alert (settings, overridden by the province file)."""

    drifted_feature_share: float = 0.3
    prediction_drift_score: float = 0.15
    quality_drop: float = 0.05


@dataclass
class MovedIndicator:
    indicator: str
    name_en: str
    name_zh: str
    drift_score: float
    method: str
    reference: str
    current: str
    change: str


@dataclass
class TaskDrift:
    """What the weekly job says about one model in one province and week."""

    task: str
    province: str
    week: str
    model: str
    version: str
    rows_current: int
    rows_reference: int
    drifted_features: int
    features: int
    drifted_feature_share: float
    prediction_drift_score: float
    moved: list[MovedIndicator] = field(default_factory=list)
    feature_scores: dict[str, float] = field(default_factory=dict)
    labels_matured: int = 0
    quality_metric: str | None = None
    quality_current: float | None = None
    quality_champion: float | None = None
    quality_drop: float | None = None
    target_drift_score: float | None = None
    breaches: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _kind(column: str, task: str, sample: pd.Series) -> str:
    """``category`` or ``number``: from the library, or for a province's custom indicator its values."""
    kind = TASKS[task].kind
    if column == TASKS[task].prediction_column:
        return "category" if kind.prediction_is_category else "number"
    if column == "target":
        return "category" if kind.target_is_category else "number"
    indicator = lib.BY_ID.get(column)
    if indicator is None:
        return "number" if pd.api.types.is_numeric_dtype(sample) else "category"
    return "category" if indicator.kind == "category" else "number"


def _prepare(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    out = pd.DataFrame(index=range(len(frame)))
    for c, kind in kinds.items():
        values = frame[c].reset_index(drop=True)
        if kind == "category" and pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
            values = values.astype("Int64")  # grade 3 read back as 3.0 is still category "3"
        out[c] = (
            values.astype("string").astype(object)
            if kind == "category"
            else pd.to_numeric(values, errors="coerce").astype(float)
        )
    return out


def _describe(ref: pd.Series, cur: pd.Series, kind: str) -> tuple[str, str, str]:
    """Reference and current in the indicator's terms: means, or the most changed category's share."""
    if kind == "number":
        r, c = float(np.nanmean(ref)), float(np.nanmean(cur))
        change = f"{(c - r) / abs(r):+.0%}" if r else f"{c - r:+.3g}"
        return f"mean {r:.3g}", f"mean {c:.3g}", change
    rs, cs = ref.value_counts(normalize=True), cur.value_counts(normalize=True)
    delta = cs.sub(rs, fill_value=0.0)
    top = delta.abs().idxmax()
    return (
        f"{top}: {rs.get(top, 0.0):.1%}",
        f"{top}: {cs.get(top, 0.0):.1%}",
        f"{100 * delta[top]:+.1f} points",
    )


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    task: str,
    indicators: list[str],
    thresholds: Thresholds,
    with_target: bool,
    *,
    province: str,
    week: str,
    model: str,
    version: str,
    timestamp: datetime | None = None,
    top: int = 5,
):
    """Evidently's report of ``current`` against ``reference`` and the week's summary.

    Both frames hold the ``indicators``, the task's prediction column and, with
    ``with_target``, a ``target`` column. Returns ``(snapshot, TaskDrift)``.
    """
    prediction = TASKS[task].prediction_column
    columns = [*indicators, prediction] + (["target"] if with_target else [])
    kinds = {c: _kind(c, task, reference[c]) for c in columns}
    numeric = [c for c in columns if kinds[c] == "number"]
    definition = DataDefinition(
        numerical_columns=numeric, categorical_columns=[c for c in columns if c not in numeric]
    )
    metrics = [
        DataDriftPreset(
            columns=indicators,
            drift_share=thresholds.drifted_feature_share,
            num_method=NUMERIC_METHOD,
            cat_method=CATEGORY_METHOD,
            threshold=COLUMN_DRIFT_THRESHOLD,
        ),
        ValueDrift(
            column=prediction,
            method=CATEGORY_METHOD if prediction in definition.categorical_columns else NUMERIC_METHOD,
            threshold=thresholds.prediction_drift_score,
        ),
    ]
    if with_target:
        metrics.append(
            ValueDrift(
                column="target",
                method=CATEGORY_METHOD if "target" not in numeric else NUMERIC_METHOD,
                threshold=COLUMN_DRIFT_THRESHOLD,
            )
        )
    ref, cur = _prepare(reference, kinds), _prepare(current, kinds)
    snapshot = Report(metrics, include_tests=True).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
        timestamp=timestamp,
        name=f"{province} {task} {week}",
        tags=[province, task, week],
        metadata={"model": model, "version": str(version)},
    )

    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            scores[config["column"]] = float(metric["value"])
    feature_scores = {c: scores[c] for c in indicators if c in scores and np.isfinite(scores[c])}
    drifted = [c for c, s in feature_scores.items() if s >= COLUMN_DRIFT_THRESHOLD]
    moved = []
    for column in sorted(drifted, key=lambda c: -feature_scores[c])[:top]:
        indicator = lib.BY_ID.get(column)
        r, c, change = _describe(ref[column], cur[column], kinds[column])
        moved.append(
            MovedIndicator(
                column,
                indicator.name_en if indicator else column,
                indicator.name_zh if indicator else column,
                round(feature_scores[column], 4),
                CATEGORY_METHOD if kinds[column] == "category" else NUMERIC_METHOD,
                r,
                c,
                change,
            )
        )
    summary = TaskDrift(
        task=task,
        province=province,
        week=week,
        model=model,
        version=str(version),
        rows_current=len(current),
        rows_reference=len(reference),
        drifted_features=len(drifted),
        features=len(indicators),
        drifted_feature_share=round(len(drifted) / max(len(indicators), 1), 4),
        prediction_drift_score=round(scores.get(prediction, float("nan")), 4),
        moved=moved,
        feature_scores={k: round(v, 4) for k, v in feature_scores.items()},
        target_drift_score=round(scores["target"], 4) if with_target and "target" in scores else None,
    )
    return snapshot, summary


def breaches(summary: TaskDrift, thresholds: Thresholds) -> list[dict]:
    """Which thresholds the week crossed, each with its value."""
    out = []
    if summary.drifted_feature_share >= thresholds.drifted_feature_share:
        out.append(
            {
                "check": "drifted_feature_share",
                "value": summary.drifted_feature_share,
                "threshold": thresholds.drifted_feature_share,
            }
        )
    prediction = summary.prediction_drift_score
    if np.isfinite(prediction) and prediction >= thresholds.prediction_drift_score:
        out.append(
            {
                "check": "prediction_drift_score",
                "value": summary.prediction_drift_score,
                "threshold": thresholds.prediction_drift_score,
            }
        )
    if summary.quality_drop is not None and summary.quality_drop >= thresholds.quality_drop:
        out.append(
            {
                "check": "quality_drop",
                "value": summary.quality_drop,
                "threshold": thresholds.quality_drop,
                "metric": summary.quality_metric,
                "current": summary.quality_current,
                "champion": summary.quality_champion,
            }
        )
    return out
