"""A trained task model: the XGBoost booster plus what turns its output into business terms.

``TaskModel`` is what the registry holds (as an MLflow pyfunc) and what serving loads.
It takes indicators as Feast serves them and returns grades, scores, probabilities and
rankings; ``contributions`` gives per-customer feature contributions natively.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from core import indicators as lib
from core.tasks import Task, task


class TaskModel:
    """Booster + task declaration + calibration: indicators in, business outputs out."""

    def __init__(
        self,
        task_name: str | Task,
        booster: xgb.Booster,
        calibration: dict | None = None,
        best_iteration: int | None = None,
    ):
        self.task: Task = task_name if isinstance(task_name, Task) else task(task_name)
        self.booster = booster
        #: what the task's kind fitted to turn raw output into business terms (``Kind.fit_calibration``)
        self.calibration = calibration or {}
        self.best_iteration = best_iteration
        #: Threads per prediction; serving scores one customer at a time, where OpenMP
        #: start-up costs more than it saves (set by ``load``).
        self.threads = 0

    @property
    def population_average(self) -> float | None:
        return self.calibration.get("population_average")

    # -- raw model output -------------------------------------------------------------
    def matrix(self, indicators: pd.DataFrame) -> xgb.DMatrix:
        """The model's input matrix, from NumPy with the library's encoding (``core.indicators.encoded``)."""
        columns = [lib.encoded(ind, indicators[ind.id]) for ind in self.task.indicators]
        return self.dmatrix(np.column_stack(columns) if columns else np.empty((len(indicators), 0)))

    def dmatrix(self, encoded: np.ndarray) -> xgb.DMatrix:
        """A DMatrix of already encoded indicators (one column per model indicator, NaN missing)."""
        return xgb.DMatrix(
            encoded,
            feature_names=self.task.feature_names,
            feature_types=self.feature_types,
            enable_categorical=True,
            missing=np.nan,
            nthread=self.threads,
        )

    @property
    def feature_types(self) -> list[str]:
        return ["c" if ind.kind == "category" else "q" for ind in self.task.indicators]

    def raw(self, indicators: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> np.ndarray:
        """Booster output: a score, a probability, or class probabilities."""
        return self.booster.predict(matrix if matrix is not None else self.matrix(indicators))

    def probabilities(self, indicators: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> np.ndarray:
        """Class probabilities for grade and channel, P(churn) for churn; scores otherwise."""
        return self.calibrate(self.raw(indicators, matrix))

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Booster output (``raw``, or ``inplace_predict``) in business terms, as the task's kind says."""
        return self.task.kind.calibrate(raw, self.calibration)

    def contributions(self, indicators: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> np.ndarray:
        """Per-customer feature contributions (XGBoost's native TreeSHAP), last column the bias.

        Shape (n, features + 1); for the channel model (n, channels, features + 1).
        """
        return self.booster.predict(
            matrix if matrix is not None else self.matrix(indicators), pred_contribs=True
        )

    # -- business outputs --------------------------------------------------------------
    def predict(self, indicators: pd.DataFrame) -> pd.DataFrame:
        """The task's outputs per customer, in business terms (the answer's block without reasons)."""
        blocks = self.task.kind.answer_blocks(self.probabilities(indicators), self.calibration)
        flat = [{k: ",".join(v) if isinstance(v, list) else v for k, v in b.items()} for b in blocks]
        return pd.json_normalize(flat).set_axis(indicators.index)

    # -- persistence ---------------------------------------------------------------------
    def metadata(self) -> dict:
        meta = {
            "task": self.task.name,
            "calibration": self.calibration,
            "best_iteration": self.best_iteration,
        }
        if self.task.tailored_indicators is not None:  # a province's model: its own indicator set
            meta["province"] = self.task.province
            meta["indicators"] = [asdict(i) for i in self.task.indicators]
        return meta

    def save(self, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(directory / "booster.ubj")
        (directory / "task_model.json").write_text(json.dumps(self.metadata(), indent=2))

    @classmethod
    def load(cls, directory) -> TaskModel:
        directory = Path(directory)
        meta = json.loads((directory / "task_model.json").read_text())
        booster = xgb.Booster()
        booster.load_model(directory / "booster.ubj")
        booster.set_param({"nthread": 1})
        t = task(meta["task"])
        if meta.get("indicators") is not None:
            t = t.for_indicators(meta["province"], [_indicator(d) for d in meta["indicators"]])
        model = cls(t, booster, _calibration(meta), meta["best_iteration"])
        model.threads = 1
        return model


def _calibration(meta: dict) -> dict:
    """The saved calibration; models saved before kinds kept it as ``link`` / ``population_average``."""
    if "calibration" in meta:
        return meta["calibration"]
    old = dict(meta.get("link") or {})
    if meta.get("population_average") is not None:
        old["population_average"] = meta["population_average"]
    return old


def _indicator(d: dict) -> lib.Indicator:
    return lib.Indicator(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def finalize(t: Task, booster, data, best_iteration: int | None) -> TaskModel:
    """Wrap the booster with what turns its output into business terms, fitted on the validation
    part of ``data`` (a ``training.data.Dataset``).

    Early stopping leaves ``early_stopping_rounds`` trees after the best round in the
    booster, and ``predict`` uses every tree: the model keeps the validated rounds only.
    """
    if best_iteration is not None and best_iteration + 1 < booster.num_boosted_rounds():
        booster = booster[: best_iteration + 1]
    raw_valid = booster.predict(xgb.DMatrix(data.X["valid"], enable_categorical=True))
    calibration = t.kind.fit_calibration(raw_valid, data.y["valid"], data.y["train"])
    return TaskModel(t, booster, calibration, best_iteration)
