"""Optuna TPE search over XGBoost parameters, pruned on the validation metric.

One study per task and province, stored in SQLite by default or PostgreSQL by URL so
several workers can tune the same study. Each trial is a nested MLflow run under the
study's parent run, and carries that run's id (user attribute ``mlflow_run_id``) for
optuna-dashboard; a pruned trial's run ends ``KILLED`` (stopped on purpose), not ``FAILED``.
Several workers (``training.workers``) share one study's trials: each trial records which
process ran it (user attribute ``worker``, ``host:pid``).
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import mlflow
import numpy as np
import optuna
import xgboost as xgb
from optuna_integration import XGBoostPruningCallback

from core.errors import ConfigurationError
from core.tasks import Task
from training.data import Dataset, customer_parts

optuna.logging.set_verbosity(optuna.logging.WARNING)


class PruneEvery(XGBoostPruningCallback):
    """Optuna's XGBoost pruning callback, reporting every ``every`` rounds.

    Each report is a write to the study storage (4-5 ms on SQLite, measured): every
    round, that costs more than the boosting itself on small data.
    """

    def __init__(self, trial: optuna.Trial, observation_key: str, every: int = 10):
        super().__init__(trial, observation_key)
        self.every = every

    def after_iteration(self, model, epoch: int, evals_log: dict) -> bool:
        if epoch % self.every:
            return False
        return super().after_iteration(model, epoch, evals_log)


#: Fewer training rows than this make a small table: smaller trees, more trials by default.
SMALL_TABLE_ROWS = 5_000
#: Trials when none are asked for: a table's default, and a small table's (cheap to fit).
DEFAULT_TRIALS, SMALL_TABLE_TRIALS = 20, 40


@dataclass(frozen=True)
class TuningBudget:
    """How much search a study may do, and its seed. ``trials=None``: suited to the table
    (``DEFAULT_TRIALS``, or ``SMALL_TABLE_TRIALS`` under ``SMALL_TABLE_ROWS`` training rows)."""

    trials: int | None = None
    timeout_seconds: float | None = None
    max_rounds: int = 600
    early_stopping_rounds: int = 30
    seed: int = 7
    threads: int = 2

    def suited(self, training_rows: int) -> TuningBudget:
        """The budget with its trials decided for a table of ``training_rows``."""
        if self.trials is not None:
            return self
        trials = SMALL_TABLE_TRIALS if training_rows < SMALL_TABLE_ROWS else DEFAULT_TRIALS
        return replace(self, trials=trials)


def base_params(t: Task, seed: int, threads: int) -> dict:
    """Parameters every trial shares: objective, metric, histogram trees, seed."""
    params = {
        **t.kind.xgb_params(),
        "tree_method": "hist",
        "seed": seed,
        "nthread": threads,
        "max_cat_to_onehot": 8,
    }
    constraints = t.monotone_constraints()
    if constraints:
        params["monotone_constraints"] = "(" + ",".join(map(str, constraints)) + ")"
    return params


def suggest(trial: optuna.Trial, small: bool = False) -> dict:
    """The search space; a small table's trees are shallower and may have lighter leaves."""
    return {
        "eta": trial.suggest_float("eta", 0.02 if small else 0.03, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 6) if small else trial.suggest_int("max_depth", 3, 8),
        # a leaf's weight is its rows' hessian: a few hundred rare-event rows weigh under 10
        "min_child_weight": trial.suggest_float(
            "min_child_weight", *((0.1, 10.0) if small else (1.0, 100.0)), log=True
        ),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "lambda": trial.suggest_float("lambda", 1e-3, 10.0, log=True),
        "alpha": trial.suggest_float("alpha", 1e-3, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 1e-4, 2.0, log=True),
    }


#: XGBoost's defaults for the searched parameters (alpha and gamma at the search's floor).
XGBOOST_DEFAULTS = {
    "eta": 0.3,
    "max_depth": 6,
    "min_child_weight": 1.0,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "lambda": 1.0,
    "alpha": 1e-3,
    "gamma": 1e-4,
}

#: A small table's first trial: shallower trees, slower learning, row and column sampling.
SMALL_TABLE_START = {
    **XGBOOST_DEFAULTS,
    "eta": 0.1,
    "max_depth": 4,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
}


def study_storage(url: str, attempts: int = 3):
    """Optuna's storage for ``url``, its schema created once even when several workers
    start together on a new database (PostgreSQL refuses the second ``CREATE TYPE`` of a
    race with a unique violation: the loser retries and finds the schema there)."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    if not url:  # in memory
        return None
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def wait_for_study(name: str, storage: str, parent_run_id: str, wait_seconds: float) -> None:
    """Wait until the lead worker has opened study ``name`` for the parent run ``parent_run_id``
    (the study's ``mlflow_parent_run_id``, set after its first trials are queued)."""
    deadline = time.monotonic() + wait_seconds
    opened = study_storage(storage)
    while True:
        try:
            found = optuna.load_study(study_name=name, storage=opened)
            if found.user_attrs.get("mlflow_parent_run_id") == parent_run_id:
                return
        except KeyError:  # not created yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"study {name!r} was not opened for run {parent_run_id} in {storage} "
                f"within {wait_seconds:.0f} s: start the lead (`telcoml train --workers N`) first"
            )
        time.sleep(0.5)


@dataclass(frozen=True)
class TuningWorker:
    """This process's part in a study tuned by several: its number (0: the lead, which opens the
    study, queues its first trials and refits the best), its share of the trials (None: all of
    the budget's), and the run its trial runs nest under (None: the active run)."""

    index: int = 0
    trials: int | None = None
    parent_run_id: str | None = None

    @property
    def name(self) -> str:
        """Which process ran a trial: ``host:pid``."""
        return f"{socket.gethostname()}:{os.getpid()}"


def shares(trials: int, workers: int) -> list[int]:
    """``trials`` split over ``workers`` as evenly as whole trials allow (the lead's first)."""
    if workers < 1 or trials < workers:
        raise ConfigurationError(f"{trials} trials cannot be shared by {workers} workers: at least one each")
    return [trials // workers + (i < trials % workers) for i in range(workers)]


#: A trial that has ended, whatever its result: what the training bar counts.
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


class StudyProgress:
    """Advances a training bar by the study's trials finished since it was made, every worker's
    (a shared study's helpers run theirs in other processes): an Optuna callback after each of
    this process's trials, and called once more when every worker is done."""

    def __init__(self, study: optuna.Study, advance: Callable[[int], None]):
        self.study = study
        self.advance = advance
        self.counted = self.finished()  # an earlier run's trials of a continued study

    def finished(self) -> int:
        """The study's trials that have ended, in every process."""
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

    def __call__(self, *_trial_done) -> None:
        now = self.finished()
        if now > self.counted:
            self.advance(now - self.counted)
            self.counted = now


def matrices(data: Dataset) -> tuple[xgb.DMatrix, xgb.DMatrix]:
    """Train and validation matrices, built once per study and reused by every trial."""
    dtrain = xgb.QuantileDMatrix(data.X["train"], label=data.y["train"], enable_categorical=True)
    dvalid = xgb.QuantileDMatrix(data.X["valid"], label=data.y["valid"], enable_categorical=True, ref=dtrain)
    return dtrain, dvalid


def fit(params: dict, dtrain, dvalid, budget: TuningBudget, callbacks=()) -> xgb.Booster:
    return xgb.train(
        params,
        dtrain,
        num_boost_round=budget.max_rounds,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=budget.early_stopping_rounds,
        callbacks=list(callbacks),
        verbose_eval=False,
    )


#: Folds of a small table's cross-validated tuning objective.
TUNING_FOLDS = 5


def cv_folds(data: Dataset, seed: int) -> tuple[xgb.DMatrix, list[tuple[np.ndarray, np.ndarray]]]:
    """A small table's train and validation rows as one matrix, and folds of its customers
    (stratified by the label, every row of a customer in one fold); the test part stays out."""
    frame, X, y = data.stacked(("train", "valid"))
    fold = customer_parts(frame, data.task, (1.0,) * TUNING_FOLDS, seed)
    splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(TUNING_FOLDS)]
    return xgb.DMatrix(X, label=y, enable_categorical=True), [s for s in splits if len(s[1])]


def cross_validated(params: dict, folds, budget: TuningBudget, t: Task) -> tuple[float, int]:
    """XGBoost's own cross-validation of ``params`` with early stopping on the kind's
    ``selection_metric`` (AUC for a propensity, classification error for a ranking): the best
    mean held-out value over the folds (negated when larger is better), and its round."""
    matrix, splits = folds
    metric, larger_is_better = t.kind.selection_metric
    history = xgb.cv(
        {**params, "eval_metric": metric},
        matrix,
        num_boost_round=budget.max_rounds,
        folds=splits,
        early_stopping_rounds=budget.early_stopping_rounds,
        maximize=larger_is_better,
        verbose_eval=False,
    )
    curve = history[f"test-{metric}-mean"] * (-1 if larger_is_better else 1)  # the study minimizes
    return float(curve.min()), int(curve.idxmin())


def end_pruned(pruned: optuna.TrialPruned) -> None:
    """End the active trial run as stopped on purpose (``KILLED``, tag ``state=pruned``): the
    exception leaving its ``with`` block would otherwise mark a pruned trial ``FAILED``."""
    mlflow.set_tags({"state": "pruned", "pruned": str(pruned)})
    mlflow.end_run(status="KILLED")


def study_name(t: Task, province: str | None, data_tag: str) -> str:
    return f"{t.name}-{(province or 'all').lower()}-{data_tag}"


def tune(
    t: Task,
    data: Dataset,
    budget: TuningBudget,
    storage: str,
    name: str,
    progress=None,
    worker: TuningWorker = TuningWorker(),
    alongside: AbstractContextManager | None = None,
) -> tuple[optuna.Study, xgb.Booster | None]:
    """Run (or continue) the study; every trial logged as a nested MLflow run.

    ``worker``: this process's share of the trials when several tune the study; a helper
    (index > 0) joins the study its lead opened, with its own sampler seed. ``alongside``:
    entered once the study is open and its first trials are queued, left after this process's
    trials (``training.workers.helpers``: the other workers run and are waited for there).
    ``progress(n)``: advanced by the study's finished trials, every worker's (``StudyProgress``).

    Returns the study and the best booster trained in this run (None if the study's best
    trial came from an earlier run), so the final model needs no refit. A small table split
    by customer (``SMALL_TABLE_ROWS``) chooses by XGBoost's cross-validation over folds of its
    train and validation customers instead (``cross_validated``; not pruned) and returns no
    booster; split by month, its validation month judges as for a large table (folds that mix
    months would judge the next month by the past ones: measured, it chose worse).
    """
    dtrain, dvalid = matrices(data)
    shared = base_params(t, budget.seed, budget.threads)
    small = len(data.y["train"]) < SMALL_TABLE_ROWS
    # a small table split by customer has no time order: folds of its customers judge a trial;
    # split by month, the validation month (the one next to the test month) stays the judge
    folds = cv_folds(data, budget.seed) if small and data.split.method == "customer" else None
    # what a trial is judged by, as its run logs it: the validation loss, or the folds' mean metric
    objective_name = f"cv_{t.kind.selection_metric[0]}" if folds else f"valid_{t.kind.eval_metric}"
    best: dict = {"value": float("inf"), "booster": None, "number": None}

    def objective(trial: optuna.Trial) -> float:
        params = {**shared, **suggest(trial, small)}
        started = time.perf_counter()
        description = (
            f"Trial {trial.number} of the Optuna study `{name}`: one set of XGBoost settings for "
            f"{t.name}, judged by {objective_name}{' over folds of customers' if folds else ''}."
        )
        with mlflow.start_run(
            run_name=f"trial-{trial.number}",
            nested=True,
            parent_run_id=worker.parent_run_id,
            description=description,
        ) as run:
            trial.set_user_attr("mlflow_run_id", run.info.run_id)  # the dashboard's way to the run
            trial.set_user_attr("worker", worker.name)
            mlflow.set_tags({"optuna.trial": trial.number, "optuna.worker": worker.name})
            mlflow.log_params(trial.params)
            if folds is not None:  # a small table: one validation part is too noisy to choose by
                value, best_iteration, booster = *cross_validated(params, folds, budget, t), None
            else:
                try:
                    booster = fit(
                        params,
                        dtrain,
                        dvalid,
                        budget,
                        callbacks=[PruneEvery(trial, f"validation-{t.kind.eval_metric}")],
                    )
                except optuna.TrialPruned as pruned:
                    end_pruned(pruned)
                    raise
                value, best_iteration = float(booster.best_score), int(booster.best_iteration)
            trial.set_user_attr("best_iteration", best_iteration)
            trial.set_user_attr("cross_validated", folds is not None)
            mlflow.log_metrics(
                {
                    objective_name: abs(value),
                    "best_iteration": best_iteration,
                    "seconds": time.perf_counter() - started,
                }
            )
            mlflow.set_tag("state", "complete")
        if value < best["value"]:
            best.update(value=value, booster=booster, number=trial.number)
        return value

    sampler = optuna.samplers.TPESampler(  # a helper samples apart from the lead (the same seed: same trials)
        seed=budget.seed + 1000 * worker.index, n_startup_trials=min(8, max(budget.trials // 3, 2))
    )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=20)
    if worker.index:  # a helper: the lead opens the study and queues its first trials
        wait_for_study(name, storage, worker.parent_run_id, wait_seconds=300)
        study = optuna.load_study(
            study_name=name, storage=study_storage(storage), sampler=sampler, pruner=pruner
        )
    else:
        study = optuna.create_study(
            study_name=name,
            storage=study_storage(storage),
            direction="minimize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
        # the dashboard names the objective; a cross-validated score that grows is minimized negated
        larger_is_better = folds is not None and t.kind.selection_metric[1]
        with warnings.catch_warnings():  # experimental since Optuna 3.2, unchanged through 5.0
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([f"negated {objective_name}" if larger_is_better else objective_name])
        if not study.trials:  # the search starts from XGBoost's defaults (a small table's: smaller trees too)
            for start in (XGBOOST_DEFAULTS, SMALL_TABLE_START) if small else (XGBOOST_DEFAULTS,):
                study.enqueue_trial(start, skip_if_exists=True)
        parent = mlflow.active_run()
        if parent is not None:  # last: helpers wait for it (``wait_for_study``)
            study.set_user_attr("mlflow_experiment_id", parent.info.experiment_id)
            study.set_user_attr("mlflow_parent_run_id", parent.info.run_id)
    counted = StudyProgress(study, progress) if progress else None
    with alongside or nullcontext():
        study.optimize(
            objective,
            n_trials=worker.trials or budget.trials,
            timeout=budget.timeout_seconds,
            callbacks=[counted] if counted else [],
            gc_after_trial=False,
        )
    if counted:  # the other workers' trials that ended after this process's last
        counted()
    # after every worker's trials: the best may be another worker's (then refit_best trains it)
    reusable = best["booster"] if best["number"] == study.best_trial.number else None
    return study, reusable


def refit_best(t: Task, data: Dataset, study: optuna.Study, budget: TuningBudget) -> xgb.Booster:
    """The best trial's parameters trained again (deterministic by seed): for a best trial
    from an earlier run of the study, whose booster this process does not hold, and for a
    small table's cross-validated trial, trained on the train part for the rounds its folds
    chose (early stopping on the validation part's loss would stop where the folds did not)."""
    dtrain, dvalid = matrices(data)
    params = {**base_params(t, budget.seed, budget.threads), **study.best_params}
    attrs = study.best_trial.user_attrs
    if not attrs.get("cross_validated"):
        return fit(params, dtrain, dvalid, budget)
    rounds = int(attrs["best_iteration"]) + 1
    booster = xgb.train(params, dtrain, num_boost_round=rounds)
    booster.set_attr(best_iteration=str(rounds - 1))  # what finalize and the refit read
    return booster


def refit_all(t: Task, data: Dataset, params: dict, rounds: int, budget: TuningBudget) -> xgb.Booster:
    """The tuned settings trained again on every labelled row of the split (train, valid and
    test), for the tuned number of rounds: the model that is served uses all the evidence."""
    _, X, y = data.stacked()
    dall = xgb.QuantileDMatrix(X, label=y, enable_categorical=True)
    return xgb.train(
        {**base_params(t, budget.seed, budget.threads), **params}, dall, num_boost_round=max(rounds, 1)
    )


def completed(study: optuna.Study, state=optuna.trial.TrialState.COMPLETE) -> int:
    """The study's trials in ``state`` (complete by default)."""
    return sum(tr.state == state for tr in study.trials)


__all__ = [
    "TuningBudget",
    "TuningWorker",
    "StudyProgress",
    "shares",
    "wait_for_study",
    "tune",
    "refit_best",
    "refit_all",
    "base_params",
    "suggest",
    "matrices",
    "fit",
    "study_name",
    "end_pruned",
    "completed",
]
