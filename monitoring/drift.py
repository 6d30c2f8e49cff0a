"""One model's week against its reference, with Evidently: feature, prediction and target drift.

``drift_report`` is pure apart from Evidently's computation: frames in, an Evidently
snapshot and a ``TaskDrift`` summary out. Each column gets two of Evidently's tests:

* a **distance** (normed Wasserstein for numbers, Jensen-Shannon for categories), the
  size of the change, the same scale for every indicator and week: the minimum effect
  the business cares about is a distance (``Thresholds.indicator_drift_score``,
  ``prediction_drift_score``);
* a **test at the week's size** (two-sample Kolmogorov-Smirnov for numbers, chi-square
  for categories), whose p-value says whether the change could be sampling noise.

A column drifted when both say so: its distance reaches the minimum effect and its
p-value is below ``1 - confidence`` divided by the number of indicators tested
(Bonferroni), so a small province's noisy week and a large province's tiny seasonal
shift are neither flagged.
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
#: The tests whose p-values say whether a change is more than the week's sampling noise.
NUMERIC_TEST = "ks"
CATEGORY_TEST = "chisquare"


@dataclass(frozen=True)
class Thresholds:
    """When a week raises an alert (settings, overridden by the province file)."""

    drifted_feature_share: float = 0.3
    prediction_drift_score: float = 0.15
    #: a province's achievable score itself moves 4-6% month to month (measured on the
    #: synthetic world's oracle): a smaller drop is not the model's doing
    quality_drop: float = 0.1
    #: the smallest distance of one indicator that counts as drift
    indicator_drift_score: float = 0.1
    #: an event rate (churn) this share above or below what the model expected
    outcome_rate_change: float = 0.3
    #: how sure a flag must be: p-values below 1 - confidence (over the indicators tested)
    confidence: float = 0.95

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence


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
    p_value: float | None = None


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
    #: the prediction's p-value at the week's size, and the per-indicator significance level
    prediction_p_value: float | None = None
    indicator_alpha: float | None = None
    moved: list[MovedIndicator] = field(default_factory=list)
    feature_scores: dict[str, float] = field(default_factory=dict)
    feature_p_values: dict[str, float] = field(default_factory=dict)
    labels_matured: int = 0
    quality_metric: str | None = None
    quality_current: float | None = None
    #: the champion's score on this province's own held-out reference rows, and how many
    quality_champion: float | None = None
    quality_reference_rows: int | None = None
    quality_drop: float | None = None
    #: the interval of the relative drop at ``confidence`` (bootstrap of both samples)
    quality_drop_low: float | None = None
    quality_drop_high: float | None = None
    #: an event model's expected and observed rate on the matured customers, and the test's p-value
    outcome_expected: float | None = None
    outcome_observed: float | None = None
    outcome_p_value: float | None = None
    #: the business's rates on the week's matured customers (the kind's metrics: for the credit
    #: grade the outcome's 漏判率 and the event rates of grades 1-2 and 4-5)
    business_rates: dict[str, float] = field(default_factory=dict)
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


def _significant(p_value: float, alpha: float) -> bool:
    """A change the week's size makes unlikely to be noise (a test that could not run is not)."""
    return bool(np.isfinite(p_value) and p_value < alpha)


def _rounded_p(p_value: float) -> float | None:
    return float(f"{p_value:.3g}") if np.isfinite(p_value) else None


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
    indicator_alpha = thresholds.alpha / max(len(indicators), 1)

    def distance(column: str) -> str:
        return NUMERIC_METHOD if kinds[column] == "number" else CATEGORY_METHOD

    def test(column: str) -> str:
        return NUMERIC_TEST if kinds[column] == "number" else CATEGORY_TEST

    metrics = [
        DataDriftPreset(
            columns=indicators,
            drift_share=thresholds.drifted_feature_share,
            num_method=NUMERIC_METHOD,
            cat_method=CATEGORY_METHOD,
            threshold=thresholds.indicator_drift_score,
        ),
        ValueDrift(
            column=prediction, method=distance(prediction), threshold=thresholds.prediction_drift_score
        ),
        # the same columns at the week's size: p-values (shown beside the distances in the report)
        *(ValueDrift(column=c, method=test(c), threshold=indicator_alpha) for c in indicators),
        ValueDrift(column=prediction, method=test(prediction), threshold=thresholds.alpha),
    ]
    if with_target:
        metrics.append(
            ValueDrift(column="target", method=distance("target"), threshold=thresholds.indicator_drift_score)
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

    scores: dict[str, float] = {}
    p_values: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            column = config["column"]
            into = p_values if config.get("method") == test(column) else scores
            into[column] = float(metric["value"])
    feature_scores = {c: scores[c] for c in indicators if c in scores and np.isfinite(scores[c])}
    feature_p = {c: p_values.get(c, float("nan")) for c in feature_scores}
    drifted = [
        c
        for c, s in feature_scores.items()
        if s >= thresholds.indicator_drift_score and _significant(feature_p[c], indicator_alpha)
    ]
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
                distance(column),
                r,
                c,
                change,
                _rounded_p(feature_p[column]),
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
        prediction_p_value=_rounded_p(p_values.get(prediction, float("nan"))),
        indicator_alpha=float(f"{indicator_alpha:.3g}"),
        moved=moved,
        feature_scores={k: round(v, 4) for k, v in feature_scores.items()},
        feature_p_values={k: _rounded_p(v) for k, v in feature_p.items()},
        target_drift_score=round(scores["target"], 4) if with_target and "target" in scores else None,
    )
    return snapshot, summary


def _breach(
    check: str, value, threshold: float, customers: int, confidence: str, evidence: str, **detail
) -> dict:
    """One crossed threshold: what, by how much, the check's own details, on how many customers
    and how sure."""
    return {
        "check": check,
        "value": value,
        "threshold": threshold,
        **detail,
        "customers": customers,
        "confidence": confidence,
        "evidence": evidence,
    }


def breaches(summary: TaskDrift, thresholds: Thresholds) -> list[dict]:
    """Which thresholds the week crossed, each with its value, how sure it is and on how many
    customers. A breach needs both the minimum effect and significance at the week's size."""
    out = []
    sure = f"{thresholds.confidence:.0%}"
    if summary.drifted_feature_share >= thresholds.drifted_feature_share:
        out.append(
            _breach(
                "drifted_feature_share",
                summary.drifted_feature_share,
                thresholds.drifted_feature_share,
                summary.rows_current,
                sure,
                f"{summary.drifted_features} of {summary.features} indicators moved by "
                f">= {thresholds.indicator_drift_score} with p < {summary.indicator_alpha} each "
                f"({sure} over the {summary.features} indicators)",
                reference_rows=summary.rows_reference,
            )
        )
    prediction, p = summary.prediction_drift_score, summary.prediction_p_value
    if (
        np.isfinite(prediction)
        and prediction >= thresholds.prediction_drift_score
        and p is not None
        and p < thresholds.alpha
    ):
        out.append(
            _breach(
                "prediction_drift_score",
                prediction,
                thresholds.prediction_drift_score,
                summary.rows_current,
                sure,
                f"p = {p:.3g} at {summary.rows_current:,} customers",
                reference_rows=summary.rows_reference,
            )
        )
    low = summary.quality_drop_low
    if (
        summary.quality_drop is not None
        and summary.quality_drop >= thresholds.quality_drop
        and low is not None
        and low > 0
    ):
        out.append(
            _breach(
                "quality_drop",
                summary.quality_drop,
                thresholds.quality_drop,
                summary.labels_matured,
                sure,
                f"drop {summary.quality_drop:.1%}, {sure} interval "
                f"[{low:.1%}, {summary.quality_drop_high:.1%}] on {summary.labels_matured:,} customers "
                f"against {summary.quality_reference_rows:,} of the province's held-out customers",
                metric=summary.quality_metric,
                current=summary.quality_current,
                champion=summary.quality_champion,
                reference_rows=summary.quality_reference_rows,
            )
        )
    expected, observed = summary.outcome_expected, summary.outcome_observed
    if (
        expected
        and observed is not None
        and abs(observed / expected - 1) >= thresholds.outcome_rate_change
        and summary.outcome_p_value is not None
        and summary.outcome_p_value < thresholds.alpha
    ):
        out.append(
            _breach(
                "outcome_rate_change",
                round(observed / expected - 1, 4),
                thresholds.outcome_rate_change,
                summary.labels_matured,
                sure,
                f"{observed:.2%} observed against {expected:.2%} expected (the model's "
                f"expectation, as right as on the held-out customers) on {summary.labels_matured:,} "
                f"customers, p = {summary.outcome_p_value:.3g}",
                expected=expected,
                observed=observed,
            )
        )
    return out
