"""Fit the credit specification's scorecard for a province (or all), test it where evidence exists,
and register it beside the supervised model: the same registered model, the same gate.

The scorecard (``training.scorecard``) needs no grade labels: it is fitted on every customer of a
month's snapshot with the province file's ``scorecard:`` section (weighting method, experts' AHP
judgements, cut-offs; the group's defaults without one). Evidence is used where it exists:

- the credit outcome (``credit_bad_event``: a bad credit event in the months after the snapshot)
  of the fitting month's customers optimises the weights (权重优化);
- labels of the credit task split as the supervised model's are (``training.data.choose_split``):
  the scorecard is fitted on the months (or customers) before the held-out part and tested on the
  held-out part, so both methods are judged on the same customers, and the gate compares them.

A province with neither gets a served grade all the same: the scorecard is registered and becomes
the champion when there is none (the gate records that nothing could test it).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from core import charts
from core import indicators as lib
from core.errors import NotReadyError
from core.scorecard_config import ScorecardConfig
from core.settings import Settings
from core.tasks import Task, task
from features.outcomes import OUTCOME_COLUMN
from features.provinces import load_province
from features.store import lineage_tags, open_store
from training import evaluate
from training.data import (
    Dataset,
    choose_split,
    held,
    label_months,
    labels_if_any,
    snapshot_frame,
    snapshot_months,
)
from training.model import ScorecardModel
from training.reference import log_reference
from training.registry import configure_mlflow, gate, log_task_model
from training.scorecard import fit_scorecard
from training.tracking import describe_run, log_frames
from training.train import TrainResult, champion_comparison
from training.workers import task_dataset, task_months

#: The credit outcome label (``features.outcomes``): 1 when a bad credit event followed the snapshot.
OUTCOME = OUTCOME_COLUMN


def _before(months: list[str], month: str) -> str | None:
    earlier = [m for m in months if m < month]
    return earlier[-1] if earlier else None


def _with_outcome(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.Series | None:
    """The matured credit outcome of the frame's customers, or None when none has matured."""
    if OUTCOME not in labels:
        return None
    known = labels.loc[labels[OUTCOME].notna(), ["msisdn", "month", OUTCOME]]
    outcome = frame[["msisdn", "month"]].merge(known, on=["msisdn", "month"], how="left")[OUTCOME]
    return outcome if outcome.notna().any() else None


def fit_credit_scorecard(
    settings: Settings,
    province: str | None = None,
    month: str | None = None,
    test_month: str | None = None,
    train_months: int = 4,
) -> TrainResult:
    """Fit, test, log, register and gate the credit scorecard of a province (or of all provinces).

    ``month``: the snapshot to fit on when there are no credit labels (default: the latest);
    with labels it is the month before the held-out one (``test_month``, ``train_months`` as in
    ``training.train.train_task``), or, split by customer, the latest with the held-out customers
    left out.
    """
    started = time.perf_counter()
    config = load_province(settings, province)
    t = task(lib.CREDIT_GRADE).tailored(config)
    card_config = (config.scorecard if config is not None else None) or ScorecardConfig()
    months = snapshot_months(settings, province)
    if not months:
        raise NotReadyError(
            f"no indicator snapshot{' for province ' + province if province else ''}: run `telcoml build`"
        )
    labels = None if settings.engine == "spark" else labels_if_any(settings, province)
    labelled = _labelled_months(settings, t, province, labels)
    data = None
    if labelled:
        split = choose_split(labelled, train_months, test_month)
        data = task_dataset(settings, t, split, province)
        fit_month = split.valid if split.method == "time" else split.test
    else:
        split = None
        fit_month = month or months[-1]
    with held(data) if data is not None else contextlib.nullcontext():
        return _fit(settings, t, card_config, province, months, fit_month, data, labels, started)


def _labelled_months(
    settings: Settings, t: Task, province: str | None, labels: pd.DataFrame | None
) -> list[str]:
    """The credit task's labelled months, none without labels (read by Spark on the Spark path)."""
    if labels is not None:
        return label_months(labels, t) if t.label in labels and labels[t.label].notna().any() else []
    try:
        return task_months(settings, t, province)
    except NotReadyError:  # a province may bring indicators only
        return []


def _fit_rows(
    settings: Settings,
    t: Task,
    province: str | None,
    fit_month: str,
    previous_month: str | None,
    data: Dataset | None,
    labels: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.Series | None, int]:
    """The fitting month's customers (split by customer: the held-out ones left out), the previous
    month's (for stability), their credit outcome, and the snapshot's customer count. On the Spark
    path a sample of at most ``TELCOML_SPARK_TUNING_SAMPLE`` customers, the same in both months."""
    by_customer = data is not None and data.split.method == "customer"  # the held-out are the judges
    if settings.engine == "spark":
        from training.spark_rows import snapshot_sample

        held_out = data.spark_rows if by_customer else None
        now = snapshot_sample(settings, t, fit_month, province, held_out=held_out)
        before = (  # the same customers, for the stability screening
            snapshot_sample(settings, t, previous_month, province, share=now.share, outcome=False)
            if previous_month
            else None
        )
        frame, customers = now.frame, now.customers
        previous = before.frame if before is not None else None
        labels = now.labels
    else:
        frame = snapshot_frame(settings, t, fit_month, province)
        customers = len(frame)
        if by_customer:
            frame = frame[~frame["msisdn"].isin(data.frames["test"]["msisdn"])].reset_index(drop=True)
        previous = snapshot_frame(settings, t, previous_month, province) if previous_month else None
    outcome = _with_outcome(frame, labels) if labels is not None else None
    return frame, previous, outcome, customers


def _fit(
    settings: Settings,
    t: Task,
    card_config: ScorecardConfig,
    province: str | None,
    months: list[str],
    fit_month: str,
    data: Dataset | None,
    labels: pd.DataFrame | None,
    started: float,
) -> TrainResult:
    split = data.split if data is not None else None
    previous_month = _before(months, fit_month)
    frame, previous, outcome, customers = _fit_rows(
        settings, t, province, fit_month, previous_month, data, labels
    )
    if outcome is not None:
        card = fit_scorecard(frame, card_config, outcome, outcome_kind="bad_event", previous=previous)
    else:  # the configured indicators, else every library credit indicator the province's model reads
        card = fit_scorecard(frame, card_config, previous=previous)
    model = ScorecardModel(t, card)

    configure_mlflow(settings, t.experiment_name(province))
    client = MlflowClient()
    name = t.model_name(province)
    with mlflow.start_run(run_name=f"scorecard-{fit_month}") as run:
        mlflow.set_tags(
            {
                "task": t.name,
                "evaluation": t.evaluation,
                "province": province or "all",
                "method": ScorecardModel.method,
                "weighting": card.method,
                "feature_service": t.service,
                "split": split.method if split else "none (no credit labels)",
                "test_score_basis": (
                    f"{data.test_basis}, never used in fitting" if data else "none (no labels)"
                ),
            }
        )
        mlflow.set_tags(lineage_tags(open_store(settings), t.evaluation, t.province))  # feast ui's models
        mlflow.log_params(
            {
                "weighting": card.method,
                "fit_month": fit_month,
                "previous_month": previous_month or "none",
                "rows_fit": len(frame),
                "snapshot_customers": customers,
                "indicators_screened": len(card.screening),
                "indicators_kept": len(card.weights),
                "cutoffs": card.details.get("cutoffs", ""),
                "optimisation": card.details["optimisation"]["status"],
                "outcome": OUTCOME if outcome is not None else "none",
                **({k: v for k, v in split.describe().items()} if split else {}),
            }
        )
        parts = {"fit": frame, **({"test": data.frames["test"]} if data is not None else {})}
        log_frames(parts, t.service, settings.project, t.label, province or "all")
        mlflow.log_metrics({f"weight.{i}": w for i, w in card.weights.items()})
        mlflow.log_metrics({f"cutoff.{k + 1}_{k + 2}": c for k, c in enumerate(card.cutoffs)})
        consistency = card.details["weighting"].get("consistency_ratio")
        if consistency is not None:
            mlflow.log_metric("ahp_consistency_ratio", consistency)
        _log_card(card, model, frame)

        result: dict[str, float] = {}
        if data is not None:
            test = data.frames["test"]
            p = model.probabilities(test[t.feature_names])
            result = evaluate.compare_with_oracle(t, data.y["test"], p, test)
            mlflow.log_metrics({k: v for k, v in result.items() if np.isfinite(v)})
            with tempfile.TemporaryDirectory() as tmp:
                oracle = evaluate.oracle_predictions(t, test) if evaluate.has_oracle(t, test) else None
                for chart in evaluate.plots(t, data.y["test"], p, oracle, Path(tmp)):
                    mlflow.log_artifact(str(chart), "evaluation")
            mlflow.log_text(json.dumps(result, indent=2), "evaluation/metrics.json")
        held_out = result.get(f"test_{t.headline}")

        example = frame[t.feature_names].head(5).reset_index(drop=True)
        example = example.astype({c: "float64" for c in example.columns if example[c].dtype.kind in "iu"})
        metadata = {
            "task": t.name,
            "method": ScorecardModel.method,
            "feature_service": t.service,
            "indicators": t.feature_names,
            "headline": t.headline,
            "test_score": held_out,
            "fitted_months": [fit_month],
        }
        version = str(log_task_model(model, example, metadata, name).version)
        client.set_model_version_tag(name, version, "method", ScorecardModel.method)
        client.set_model_version_tag(name, version, "fitted_months", fit_month)
        if held_out is not None:
            client.set_model_version_tag(name, version, "held_out_score", f"{held_out:.6f}")
            against = champion_comparison(t, province, data.frames["test"], data.y["test"], p, held_out)
        else:
            against = _untestable
        decision = gate(
            client,
            t,
            name,
            version,
            held_out if held_out is not None else float("nan"),
            against,
            settings.gate_margin,
        )
        describe_run(
            [
                f"The specification's credit **scorecard** ({province or 'all provinces'}, "
                f"{card.method} weights) fitted on the {fit_month} snapshot "
                f"({_fitted_on(len(frame), customers)}) "
                f"from the Feast FeatureService `{t.service}`.",
                (
                    f"Held-out {t.headline} {held_out:.4f}."
                    if held_out is not None and np.isfinite(held_out)
                    else "No credit labels: not tested."
                )
                + f" Registered as {name} version {version}: "
                + ("champion" if decision.promoted else "challenger")
                + f" ({decision.reason}).",
            ]
        )
        if data is not None:
            log_reference(model, data.frames, t.label)
        else:
            # no held-out part to judge quality on: the fitting month's customers, for drift only
            unlabelled = frame.assign(**{t.label: np.nan})
            log_reference(model, {"test": unlabelled.iloc[:0], "valid": unlabelled}, t.label)
    return TrainResult(
        t.name,
        province,
        result or {f"test_{t.headline}": float("nan"), "oracle_ratio": float("nan")},
        run.info.run_id,
        name,
        version,
        decision.promoted,
        decision.champion_score,
        0,
        0,
        time.perf_counter() - started,
        [{"indicator": i, "weight": w} for i, w in sorted(card.weights.items(), key=lambda kv: -kv[1])],
        split.method if split else "none",
        decision.reason,
        method=ScorecardModel.method,
    )


def _fitted_on(rows: int, customers: int) -> str:
    """The customers a card was fitted on, in words: all of the snapshot's, or a sample of them."""
    if rows >= customers:
        return f"{rows:,} customers"
    return f"{rows:,} of its {customers:,} customers"


def _untestable(champion) -> tuple[float, float, str]:
    """No labels to judge the scorecard against a champion on: it does not replace one."""
    return float("nan"), float("nan"), "no credit labels or outcomes to compare the methods on"


def _log_card(card, model: ScorecardModel, frame: pd.DataFrame) -> None:
    """The scorecard itself (JSON), its screening table and its picture, under ``scorecard/``."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "scorecard.json").write_text(
            json.dumps(card.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
        )
        card.screening.to_csv(directory / "screening.csv")
        encoded = np.column_stack([lib.encoded(i, frame[i.id]) for i in model.task.indicators])
        charts.scorecard(
            card.weights, card.prior_weights, model.score_encoded(encoded), card.cutoffs, directory
        )
        for path in directory.iterdir():
            mlflow.log_artifact(str(path), "scorecard")
        mlflow.log_dict(card.details, "scorecard/details.json")


__all__ = ["fit_credit_scorecard", "OUTCOME"]
