"""Train a task: tune, test against the oracle and the baselines, explain, refit, register, gate.

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
import optuna
import pandas as pd
import xgboost as xgb
from mlflow import MlflowClient

from core.settings import Settings
from core.tasks import TASKS, Task
from features.store import lineage_tags, open_store
from training import evaluate, explain
from training.baselines import BASELINES, best_baseline, check_against, judge_baselines
from training.data import Dataset, customer_parts, held
from training.model import TaskModel, finalize
from training.reference import log_reference
from training.registry import configure_mlflow, gate, load_task_model, log_task_model
from training.tracking import describe_run, log_frames
from training.tune import (
    SMALL_TABLE_ROWS,
    TuningBudget,
    TuningWorker,
    base_params,
    completed,
    fit,
    refit_all,
    refit_best,
    shares,
    study_name,
    tune,
)
from training.workers import TuningOrder, check_shared, helpers, shared_sample, task_data


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
    split: str = "time"
    gate_reason: str = ""
    #: how the model answers: ``xgboost`` (supervised) or ``scorecard`` (the specification's method)
    method: str = "xgboost"


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


#: Fewer held-out customers than this that the champion was not fitted on: the gate reads
#: the champion's recorded held-out score instead of scoring it again.
MIN_GATE_ROWS = 200
#: Cross-validation folds reported for a small table (``SMALL_TABLE_ROWS`` labelled rows).
CV_FOLDS = 5


def cross_validate(t: Task, data: Dataset, params: dict, budget: TuningBudget) -> dict[str, float]:
    """The tuned settings judged on every labelled row of a small table, fold by fold: each fold
    of customers is held out once while the rest is split by customer into fit and calibration
    rows, as the held-out test was. Mean and spread of the headline metric."""
    frame, X, y = data.stacked()
    fold = customer_parts(frame, t, (1.0,) * CV_FOLDS, budget.seed)
    scores = []
    for k in range(CV_FOLDS):
        rest = np.flatnonzero(fold != k)
        inner = customer_parts(frame.iloc[rest], t, (0.75, 0.25), budget.seed + 1 + k)
        fit_rows, calibration_rows, test_rows = rest[inner == 0], rest[inner == 1], np.flatnonzero(fold == k)
        if not len(test_rows) or not len(calibration_rows):
            continue
        dfit = xgb.QuantileDMatrix(X.iloc[fit_rows], label=y[fit_rows], enable_categorical=True)
        dcal = xgb.QuantileDMatrix(
            X.iloc[calibration_rows], label=y[calibration_rows], enable_categorical=True, ref=dfit
        )
        booster = fit({**base_params(t, budget.seed, budget.threads), **params}, dfit, dcal, budget)
        booster = booster[: int(booster.best_iteration) + 1]
        raw = {
            n: booster.predict(xgb.DMatrix(X.iloc[r], enable_categorical=True))
            for n, r in (("cal", calibration_rows), ("test", test_rows))
        }
        calibration = t.kind.fit_calibration(raw["cal"], y[calibration_rows], y[fit_rows])
        try:
            scores.append(
                evaluate.metrics(t, y[test_rows], t.kind.calibrate(raw["test"], calibration))[t.headline]
            )
        except ValueError:  # a fold with one class only cannot be judged
            continue
    scores = [s for s in scores if np.isfinite(s)]
    if not scores:
        return {}
    return {
        f"cv_{t.headline}_mean": float(np.mean(scores)),
        f"cv_{t.headline}_std": float(np.std(scores)),
        "cv_folds": float(len(scores)),
    }


def champion_comparison(
    t: Task, province: str | None, test: pd.DataFrame, y: np.ndarray, p: np.ndarray, held_out_score: float
):
    """The gate's ``against_champion``: champion and challenger (outputs ``p`` on ``test``) on the
    held-out customers the champion was not fitted on, or the champion's recorded held-out score
    when it was fitted on (nearly) all of them."""

    def against_champion(champion) -> tuple[float, float, str]:
        tagged = champion.tags.get("fitted_months")
        unseen = ~test["month"].isin(tagged.split(",")) if tagged else np.ones(len(test), bool)
        unseen = np.asarray(unseen)
        if unseen.sum() >= MIN_GATE_ROWS and t.kind.judgeable(test.loc[unseen, t.label], 10):
            model = load_task_model(f"models:/{t.model_name(province)}/{champion.version}")
            ours = evaluate.metrics(t, y[unseen], p[unseen])[t.headline]
            theirs = evaluate.metrics(t, y[unseen], model.probabilities(test.loc[unseen, t.feature_names]))
            return theirs[t.headline], ours, f"{int(unseen.sum())} held-out customers neither was fitted on"
        recorded = champion.tags.get("held_out_score") or champion.tags.get("gate.challenger_score")
        return float(recorded), held_out_score, "the champion's recorded held-out score"

    return against_champion


def run_description(
    t: Task, province: str | None, data: Dataset, study, result: dict, version: str, decision
) -> list[str]:
    """The parent run's description: what was trained on which data, how well, and what became of it."""
    split, headline = data.split, result[f"test_{t.headline}"]
    ratio = result.get("oracle_ratio", float("nan"))
    pruned = completed(study, optuna.trial.TrialState.PRUNED)
    return [
        f"**{t.name}** ({province or 'all provinces'}) from the Feast FeatureService "
        f"`{data.lineage['feature_service']}`, split by {split.method}: "
        + ", ".join(f"{k} {v:,} rows" for k, v in data.lineage["rows"].items())
        + ".",
        f"Optuna study `{study.study_name}`: {len(study.trials)} trials ({pruned} pruned), "
        f"best trial {study.best_trial.number}.",
        f"Held-out {t.headline} {headline:.4f}"
        + (f", {ratio:.1%} of the oracle's" if np.isfinite(ratio) else "")
        + f". Registered as {t.model_name(province)} version {version}: "
        + ("champion" if decision.promoted else "challenger")
        + f" ({decision.reason}).",
    ]


def train_task(
    settings: Settings,
    task_name: str,
    province: str | None = None,
    budget: TuningBudget = TuningBudget(),
    test_month: str | None = None,
    train_months: int = 4,
    progress=None,
    refit: bool = True,
    tuning_workers: int = 1,
) -> TrainResult:
    """Tune, test, refit, register and gate one task's model.

    The split is by month with three or more labelled months, by customer with fewer
    (``training.data.choose_split``). The tuned model is tested on the held-out part, beside
    the two baselines (``training.baselines``) and, for a small table, a cross-validation;
    then (``refit``) the same settings are trained on every labelled row of the split for
    the tuned number of rounds, and that model is registered. The test score reported is
    the one measured before the refit; the reference for weekly monitoring carries the
    tested model's predictions.

    ``tuning_workers`` > 1: that many processes tune the study at once on a shared study
    storage (``TELCOML_OPTUNA_STORAGE=postgresql+psycopg://...``), sharing its trials
    (``training.workers``); this one then refits, tests, registers and gates the best.
    """
    started = time.perf_counter()
    check_shared(settings.study_storage, tuning_workers)
    t, split, data, budget = task_data(settings, task_name, province, budget, test_month, train_months)
    rows = data.rows  # every labelled row; on the Spark path the matrices hold a sample of them
    basis = data.test_basis + (", measured before the refit" if refit else "")
    configure_mlflow(settings, t.experiment_name(province))
    client = MlflowClient()
    name = study_name(t, province, f"{split.tag}-s{budget.seed}")
    trial_shares = shares(budget.trials, tuning_workers)
    distributed = settings.engine == "spark"  # the final fits over Spark (training.distributed)
    tuned_on = data
    if distributed:  # Optuna tunes on a sample of the driver's
        from training import distributed as spark_fits

        tuned_on = spark_fits.tuning_sample(data, settings.spark_tuning_sample, budget.seed)
    with (
        mlflow.start_run(run_name=f"study-{name}") as parent,
        # the Spark path's helpers read the lead's tuning sample instead of joining the rows again
        shared_sample(settings, tuned_on, name, tuning_workers) as sample,
        # several workers: the helpers start now, their start-up beside the lead's logging
        helpers(
            settings,
            TuningOrder(t.name, province, budget, test_month, train_months, parent.info.run_id, sample),
            trial_shares,
        ) as crew,
        held(data),  # the Spark path's persisted rows, released once the task is trained
    ):
        mlflow.set_tags(
            {
                "task": t.name,
                "evaluation": t.evaluation,
                "province": province or "all",
                "feature_service": data.lineage["feature_service"],
                "optuna.study": name,
                "split": split.method,
                "test_score_basis": basis,
            }
        )
        mlflow.log_params(
            {
                "trials": budget.trials,
                "timeout_seconds": budget.timeout_seconds,
                "seed": budget.seed,
                **split.describe(),
                "rows_train": rows["train"],
                "rows_valid": rows["valid"],
                "rows_test": rows["test"],
                "small_table": rows["train"] < SMALL_TABLE_ROWS,
            }
        )
        mlflow.log_dict(data.lineage, "lineage.json")
        mlflow.set_tags(lineage_tags(open_store(settings), t.evaluation, t.province))  # feast ui's models
        log_frames(data.frames, data.lineage["feature_service"], settings.project, t.label, province or "all")
        if distributed:
            workers = spark_fits.workers(settings)
            mlflow.set_tags({"engine": "spark", "num_workers": workers})
            mlflow.log_params({"rows_tuned": len(tuned_on.y["train"]), "rows_tested": len(data.y["test"])})
        study, booster = tune(
            t,
            tuned_on,
            budget,
            settings.study_storage,
            name,
            progress=progress,
            worker=TuningWorker(0, trial_shares[0]),
            alongside=crew.joined(),  # the best is chosen once every worker's trials are in
        )
        if distributed:
            booster = spark_fits.refit_best(settings, t, data, study, budget)
        elif booster is None:
            booster = refit_best(t, data, study, budget)
        candidate = finalize(t, booster, data, int(booster.best_iteration))
        mlflow.log_params({f"best_{k}": v for k, v in study.best_params.items()})

        test_indicators = data.frames["test"][t.feature_names]
        p = candidate.probabilities(test_indicators)
        result = evaluate.compare_with_oracle(t, data.y["test"], p, data.frames["test"])
        baselines = judge_baselines(data, budget)
        for b in baselines.values():
            result[f"baseline_{b.name}_{t.headline}"] = b.metrics[f"test_{t.headline}"]
        floor = best_baseline(baselines, t.headline)
        if sum(rows.values()) < SMALL_TABLE_ROWS:
            result.update(cross_validate(t, data, study.best_params, budget))
        mlflow.log_metrics({k: v for k, v in result.items() if np.isfinite(v)})
        importance = _log_evaluation(candidate, data, p)

        served = candidate
        if refit:
            rounds = int(booster.best_iteration) + 1
            served = TaskModel(
                t,
                spark_fits.refit_all(settings, t, data, study.best_params, rounds, budget)
                if distributed
                else refit_all(t, data, study.best_params, rounds, budget),
                candidate.calibration,
                int(booster.best_iteration),
            )
            mlflow.log_params({"refit": "every labelled row of the split", "rows_refit": sum(rows.values())})
        fitted = split.months if refit else split.train
        metadata = {
            "task": t.name,
            "feature_service": data.lineage["feature_service"],
            "indicators": t.feature_names,
            "lineage": data.lineage,
            "headline": t.headline,
            "test_score": result[f"test_{t.headline}"],
            "test_score_basis": basis,
            "fitted_months": list(fitted),
            "oracle_ratio": result["oracle_ratio"] if np.isfinite(result["oracle_ratio"]) else None,
        }
        # integer indicators may arrive empty from the online store: declare them as doubles
        example = test_indicators.head(5).reset_index(drop=True)
        example = example.astype({c: "float64" for c in example.columns if example[c].dtype.kind in "iu"})
        version = str(log_task_model(served, example, metadata, t.model_name(province)).version)
        client.set_model_version_tag(t.model_name(province), version, "fitted_months", ",".join(fitted))
        client.set_model_version_tag(
            t.model_name(province), version, "held_out_score", f"{result[f'test_{t.headline}']:.6f}"
        )

        against_champion = champion_comparison(
            t, province, data.frames["test"], data.y["test"], p, result[f"test_{t.headline}"]
        )
        decision = gate(
            client,
            t,
            t.model_name(province),
            version,
            result[f"test_{t.headline}"],
            against_champion,
            settings.gate_margin,
            baseline=check_against(t, data.y["test"], p, floor, seed=budget.seed) if floor else None,
        )
        mlflow.log_text(json.dumps(result, indent=2), "evaluation/metrics.json")
        log_reference(served, data.frames, t.label, tested=candidate)  # what weekly monitoring compares with
        describe_run(run_description(t, province, data, study, result, version, decision))
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
        split.method,
        decision.reason,
    )


def quality_table(results: list[TrainResult]) -> pd.DataFrame:
    """The business-facing quality table: headline metric, oracle, ratio, the baselines on the
    same held-out rows, the split and the gate's decision."""
    rows = []
    for r in results:
        t = TASKS[r.task]
        headline = r.metrics[f"test_{t.headline}"]
        rows.append(
            {
                "task": r.task,
                "method": r.method,
                "province": r.province or "all",
                "metric": t.headline,
                "metric_label": t.kind.headline_label,
                "model": headline,
                "oracle": r.metrics.get(f"oracle_{t.headline}", float("nan")),
                "ratio": r.metrics["oracle_ratio"],
                **{
                    short: r.metrics.get(f"baseline_{key}_{t.headline}", float("nan"))
                    for key, short in BASELINES.items()
                },
                "extra": t.kind.summary(r.metrics)
                if np.isfinite(r.metrics[f"test_{t.headline}"])
                else "untested",
                "split": r.split,
                "version": r.version,
                "champion": "promoted" if r.promoted else f"refused ({r.gate_reason})",
            }
        )
    return pd.DataFrame(rows)
