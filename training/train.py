"""Train a task: tune, refit, evaluate against the oracle, explain, log, register, gate.

``train_task`` is the typed entry the CLI calls; everything it does is recorded in one
MLflow parent run (a nested run per trial), and the model is registered per task and
province with the champion/challenger gate deciding the ``champion`` alias.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from core.settings import Settings
from core.tasks import TASKS, Task, task
from features.provinces import load_province
from training import evaluate, explain
from training.data import Dataset, label_months, load_labels, make_dataset, time_split
from training.model import TaskModel
from training.reference import log_reference
from training.registry import configure_mlflow, gate, load_task_model, log_task_model
from training.tune import TuningBudget, completed, refit_best, study_name, tune


@dataclass
class TrainResult:
    task: str
    province: str | None
    metrics: dict[str, float]
    run_id: str
    model_name: str
    version: str
    promoted: bool
    champion_score: float | None
    trials: int
    complete_trials: int
    seconds: float
    importance: list[dict] = field(default_factory=list)


def finalize(t: Task, booster, data: Dataset, best_iteration: int | None) -> TaskModel:
    """Wrap the booster with what turns its output into business terms (fitted on the validation month).

    Early stopping leaves ``early_stopping_rounds`` trees after the best round in the
    booster, and ``predict`` uses every tree: the model keeps the validated rounds only.
    """
    import xgboost as xgb

    if best_iteration is not None and best_iteration + 1 < booster.num_boosted_rounds():
        booster = booster[: best_iteration + 1]
    raw_valid = booster.predict(xgb.DMatrix(data.X["valid"], enable_categorical=True))
    calibration = t.kind.fit_calibration(raw_valid, data.y["valid"], data.y["train"])
    return TaskModel(t, booster, calibration, best_iteration)


def _log_evaluation(model: TaskModel, data: Dataset, p: np.ndarray) -> list[dict]:
    t = model.task
    test = data.frames["test"]
    with tempfile.TemporaryDirectory() as tmp:
        oracle = evaluate.oracle_predictions(t, test) if evaluate.has_oracle(t, test) else None
        charts = evaluate.plots(t, data.y["test"], p, oracle, Path(tmp))
        indicators = test[t.feature_names]
        charts.append(explain.shap_summary_plot(model, indicators, Path(tmp) / "shap_summary.png"))
        importance = explain.global_importance(model, indicators)
        importance.to_csv(Path(tmp) / "shap_importance.csv", index=False)
        for chart in charts:
            mlflow.log_artifact(str(chart), "evaluation")
        mlflow.log_artifact(str(Path(tmp) / "shap_importance.csv"), "evaluation")
    return importance.head(10).to_dict("records")


def train_task(
    settings: Settings,
    task_name: str,
    province: str | None = None,
    budget: TuningBudget = TuningBudget(),
    test_month: str | None = None,
    train_months: int = 4,
    progress=None,
) -> TrainResult:
    """Tune, train, evaluate, register and gate one task's model."""
    started = time.perf_counter()
    t = task(task_name).tailored(load_province(settings, province))  # a province file's own indicator set
    split = time_split(label_months(load_labels(settings, province), t), train_months, test_month)
    data = make_dataset(settings, t, split, province)
    configure_mlflow(settings, t.experiment_name(province))
    client = MlflowClient()
    name = study_name(t, province, f"{split.test}-s{budget.seed}")
    with mlflow.start_run(run_name=f"study-{name}") as parent:
        mlflow.set_tags(
            {
                "task": t.name,
                "evaluation": t.evaluation,
                "province": province or "all",
                "feature_service": data.lineage["feature_service"],
                "optuna.study": name,
            }
        )
        mlflow.log_params(
            {
                "trials": budget.trials,
                "timeout_seconds": budget.timeout_seconds,
                "seed": budget.seed,
                "train_months": ",".join(split.train),
                "valid_month": split.valid,
                "test_month": split.test,
                "rows_train": data.lineage["rows"]["train"],
            }
        )
        mlflow.log_dict(data.lineage, "lineage.json")
        study, booster = tune(t, data, budget, settings.study_storage, name, progress=progress)
        if booster is None:
            booster = refit_best(t, data, study, budget)
        model = finalize(t, booster, data, int(booster.best_iteration))
        mlflow.log_params({f"best_{k}": v for k, v in study.best_params.items()})

        test_indicators = data.frames["test"][t.feature_names]
        p = model.probabilities(test_indicators)
        result = evaluate.compare_with_oracle(t, data.y["test"], p, data.frames["test"])
        mlflow.log_metrics({k: v for k, v in result.items() if np.isfinite(v)})
        importance = _log_evaluation(model, data, p)

        metadata = {
            "task": t.name,
            "feature_service": data.lineage["feature_service"],
            "indicators": t.feature_names,
            "lineage": data.lineage,
            "headline": t.headline,
            "test_score": result[f"test_{t.headline}"],
            "oracle_ratio": result["oracle_ratio"] if np.isfinite(result["oracle_ratio"]) else None,
        }
        # integer indicators may arrive empty from the online store: declare them as doubles
        example = test_indicators.head(5).reset_index(drop=True)
        example = example.astype({c: "float64" for c in example.columns if example[c].dtype.kind in "iu"})
        info = log_task_model(model, example, metadata, t.model_name(province))
        version = str(info.registered_model_version)

        def champion_score(uri: str) -> float:
            champion = load_task_model(uri)
            return evaluate.metrics(t, data.y["test"], champion.probabilities(test_indicators))[t.headline]

        decision = gate(
            client,
            t,
            t.model_name(province),
            version,
            result[f"test_{t.headline}"],
            champion_score,
            settings.gate_margin,
        )
        mlflow.log_text(json.dumps(result, indent=2), "evaluation/metrics.json")
        log_reference(model, data.frames, t.label)  # what weekly monitoring compares with
    return TrainResult(
        t.name,
        province,
        result,
        parent.info.run_id,
        t.model_name(province),
        version,
        decision.promoted,
        decision.champion_score,
        len(study.trials),
        completed(study),
        time.perf_counter() - started,
        importance,
    )


def train_all(
    settings: Settings,
    province: str | None = None,
    budget: TuningBudget = TuningBudget(),
    tasks: list[str] | None = None,
    progress=None,
    **kwargs,
) -> list[TrainResult]:
    """Every task with labels (or the named ones), one after another.

    A province that brought its own data may have labels for some tasks only.
    """
    if not tasks:
        labels = load_labels(settings, province)
        tasks = [
            name for name, t in TASKS.items() if t.label in labels.columns and labels[t.label].notna().any()
        ]
    return [
        train_task(
            settings,
            name,
            province,
            budget,
            progress=progress(name, budget.trials) if progress else None,
            **kwargs,
        )
        for name in tasks
    ]


def quality_table(results: list[TrainResult]) -> pd.DataFrame:
    """The business-facing quality table: headline metric, oracle, ratio, gate decision."""
    rows = []
    for r in results:
        t = TASKS[r.task]
        rows.append(
            {
                "task": r.task,
                "province": r.province or "all",
                "metric": t.headline,
                "metric_label": t.kind.headline_label,
                "model": r.metrics[f"test_{t.headline}"],
                "oracle": r.metrics.get(f"oracle_{t.headline}", float("nan")),
                "ratio": r.metrics["oracle_ratio"],
                "extra": t.kind.summary(r.metrics),
                "version": r.version,
                "champion": "promoted" if r.promoted else f"refused (champion {r.champion_score:.4f})",
            }
        )
    return pd.DataFrame(rows)
