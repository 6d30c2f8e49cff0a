"""The production profile's final fits as XGBoost's distributed estimator (``xgboost.spark``).

With ``TELCOML_ENGINE=spark`` a task is tuned by Optuna on an in-memory sample of its training
customers (at most ``TELCOML_SPARK_TUNING_SAMPLE`` rows, the whole part when it is smaller),
and the fits that make the registered model run over Spark: the best
trial's settings on the train part with early stopping on the validation part
(``refit_best``), then on every labelled row for the tuned rounds (``refit_all``). Each is a
``SparkXGBClassifier`` (binary, multi-class) or ``SparkXGBRegressor`` (grades and scores,
squared error) with ``TELCOML_SPARK_NUM_WORKERS`` workers (default: Spark's default
parallelism); its booster goes through the same ``training.model.finalize``, so the registry
holds the same ``TaskModel`` and serving is unchanged.

The rows come from Spark (``training.spark_rows``: labels read by Spark, indicators by Feast's
Spark offline store); the driver holds only the sample Optuna tunes on and the held-out sample
the candidate is tested on. Rows held on the driver (a ``Dataset`` made by
``training.data.make_dataset``) are handed to Spark through Arrow (``pandas_rows``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xgboost as xgb

from core.errors import ConfigurationError
from core.spark import session_setting, spark_session
from core.tasks import Task
from training.data import PARTS, Dataset, customer_parts
from training.tune import TuningBudget, base_params

if TYPE_CHECKING:
    import optuna
    from pyspark.sql import DataFrame, SparkSession

    from core.settings import Settings

LABEL, VALIDATION = "label", "is_validation"
#: Rows per Arrow batch that the workers read their partition in; 0: no limit, one batch each.
BATCH_ROWS, ONE_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch", "0"
#: Parameters the estimators set themselves: threads are Spark's task cpus, the classifier
#: chooses its objective and classes from the labels.
_SET_BY_SPARK = ("nthread", "n_jobs")
_SET_BY_CLASSIFIER = ("objective", "num_class")


def workers(settings: Settings) -> int:
    """XGBoost workers (one Spark task each): the setting, or Spark's default parallelism."""
    return settings.spark_num_workers or spark_session(settings).sparkContext.defaultParallelism


def tuning_sample(data: Dataset, rows: int, seed: int) -> Dataset:
    """``data`` with its train and validation parts cut to about ``rows`` and ``rows / 4`` rows,
    whole customers at a time (stratified as the split by customer is); the test part untouched.
    Unchanged when both parts are already that small."""
    wanted = {"train": rows, "valid": max(rows // 4, 1)}
    if all(len(data.y[k]) <= n for k, n in wanted.items()):
        return data
    X, y, frames = dict(data.X), dict(data.y), dict(data.frames)
    for k, n in wanted.items():
        if len(y[k]) <= n:
            continue
        share = n / len(y[k])
        keep = customer_parts(frames[k], data.task, (share, 1.0 - share), seed) == 0
        X[k] = X[k][keep].reset_index(drop=True)
        y[k] = y[k][keep]
        frames[k] = frames[k][keep].reset_index(drop=True)
    return replace(data, X=X, y=y, frames=frames)


def numeric(X: pd.DataFrame) -> pd.DataFrame:
    """Encoded indicators as float columns: a category by its library code (NaN when missing),
    as serving's encoder gives it to the booster (``TaskModel.dmatrix``)."""
    out = pd.DataFrame(index=X.index)
    for column in X.columns:
        values = X[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy().astype("float64")
            out[column] = np.where(codes < 0, np.nan, codes)
        else:
            out[column] = values.astype("float64")
    return out


def spark_frame(spark: SparkSession, X: pd.DataFrame, y: np.ndarray, validation: np.ndarray) -> DataFrame:
    """The rows as a Spark DataFrame: one float column per indicator, the label, the validation flag."""
    frame = numeric(X).assign(**{LABEL: np.asarray(y, dtype="float64"), VALIDATION: validation.astype(bool)})
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    return spark.createDataFrame(frame)


def pandas_rows(
    spark: SparkSession, parts: list[tuple[pd.DataFrame, np.ndarray, bool]], seed: int = 0
) -> DataFrame:
    """Rows held on the driver (indicators, labels, whether they validate) as the fits read them.

    xgboost.spark 3.2 fails on an Arrow batch of a partition without training or without
    validating rows (KeyError 'values' in create_dmatrix_from_partitions): the rows are
    shuffled (by the seed), and ``fit_distributed`` reads each partition as one batch."""
    order = np.random.default_rng(seed).permutation(sum(len(p[1]) for p in parts))
    X = pd.concat([p[0] for p in parts], ignore_index=True).iloc[order].reset_index(drop=True)
    y = np.concatenate([p[1] for p in parts])[order]
    validation = np.concatenate([np.full(len(p[1]), p[2]) for p in parts])[order]
    return spark_frame(spark, X, y, validation)


def estimator(t: Task, params: dict, rounds: int, num_workers: int, early_stopping_rounds: int | None):
    """The task kind's estimator: a classifier for binary and multi-class objectives, a regressor
    for squared error; the booster's parameters as the local fit takes them."""
    from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

    objective = params["objective"]
    classifier = objective.startswith(("binary:", "multi:"))
    if not classifier and not objective.startswith("reg:"):
        raise ConfigurationError(f"{t.name}: objective {objective} has no xgboost.spark estimator here")
    dropped = _SET_BY_SPARK + (_SET_BY_CLASSIFIER if classifier else ())
    booster_params = {k: v for k, v in params.items() if k not in dropped}
    shared = dict(
        features_col=t.feature_names,
        label_col=LABEL,
        feature_names=t.feature_names,
        feature_types=["c" if ind.kind == "category" else "q" for ind in t.indicators],
        missing=np.nan,
        num_workers=num_workers,
        n_estimators=max(int(rounds), 1),
        force_repartition=True,
        verbose=False,
    )
    if early_stopping_rounds is not None:
        shared.update(validation_indicator_col=VALIDATION, early_stopping_rounds=early_stopping_rounds)
    cls = SparkXGBClassifier if classifier else SparkXGBRegressor
    return cls(**shared, **booster_params)


def fit_distributed(
    settings: Settings,
    t: Task,
    params: dict,
    rounds: int,
    rows: DataFrame,
    early_stopping_rounds: int | None = None,
) -> xgb.Booster:
    """One distributed fit over ``rows`` (a float column per indicator, ``LABEL``,
    ``VALIDATION``) for up to ``rounds`` rounds; with ``early_stopping_rounds`` the validating
    rows stop it, and the booster keeps XGBoost's ``best_iteration`` attribute as the local fit
    does."""
    from pyspark.sql import functions as F

    spark = spark_session(settings)
    if params["objective"].startswith("multi:"):
        present = rows.filter(~F.col(VALIDATION)).select(LABEL).distinct().count()
        if present != int(params["num_class"]):  # the classifier counts the classes in the labels
            raise ConfigurationError(
                f"{t.name}: {present} of {params['num_class']} classes in the training rows; "
                "xgboost.spark needs every class present (train with TELCOML_ENGINE=pandas)"
            )
    # each partition read as one Arrow batch: none without training or validating rows (the
    # estimator's repartition spreads the rows round-robin; see pandas_rows)
    with session_setting(spark, BATCH_ROWS, ONE_BATCH):
        model = estimator(t, params, rounds, workers(settings), early_stopping_rounds).fit(rows)
    return model.get_booster()


def fit_rows(
    settings: Settings, data: Dataset, parts: tuple[str, ...], validating: tuple[str, ...], seed: int
) -> DataFrame:
    """The rows of ``parts`` for a fit: every labelled row from Spark when the dataset has them
    there (``training.spark_rows``), else the driver's matrices."""
    if data.spark_rows is not None:
        return data.spark_rows.encoded(data.task, parts, validating)
    return pandas_rows(
        spark_session(settings), [(data.X[k], data.y[k], k in validating) for k in parts], seed
    )


def refit_best(
    settings: Settings, t: Task, data: Dataset, study: optuna.Study, budget: TuningBudget
) -> xgb.Booster:
    """``training.tune.refit_best`` over Spark: the best trial's settings on the train part,
    early-stopped on the validation part (or for the rounds a cross-validated trial chose)."""
    params = {**base_params(t, budget.seed, budget.threads), **study.best_params}
    attrs = study.best_trial.user_attrs
    if attrs.get("cross_validated"):
        rounds = int(attrs["best_iteration"]) + 1
        train = fit_rows(settings, data, ("train",), (), budget.seed)
        booster = fit_distributed(settings, t, params, rounds, train)
        booster.set_attr(best_iteration=str(rounds - 1))
        return booster
    rows = fit_rows(settings, data, ("train", "valid"), ("valid",), budget.seed)
    booster = fit_distributed(settings, t, params, budget.max_rounds, rows, budget.early_stopping_rounds)
    if booster.attr("best_iteration") is None:  # never stopped: every round was the best so far
        booster.set_attr(best_iteration=str(booster.num_boosted_rounds() - 1))
    return booster


def refit_all(
    settings: Settings, t: Task, data: Dataset, params: dict, rounds: int, budget: TuningBudget
) -> xgb.Booster:
    """``training.tune.refit_all`` over Spark: every labelled row of the split, the tuned rounds."""
    rows = fit_rows(settings, data, PARTS, (), budget.seed)
    return fit_distributed(
        settings, t, {**base_params(t, budget.seed, budget.threads), **params}, rounds, rows
    )


__all__ = [
    "tuning_sample",
    "refit_best",
    "refit_all",
    "fit_distributed",
    "fit_rows",
    "pandas_rows",
    "workers",
    "numeric",
]
