"""A trained task model: the XGBoost booster plus what turns its output into business terms.

``TaskModel`` is what the registry holds (as an MLflow pyfunc) and what serving loads.
It takes indicators as Feast serves them and returns grades, scores, probabilities and
rankings; ``contributions`` gives per-customer feature contributions natively.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.optimize import minimize

from training.tasks import CHURN_BANDS, SENSITIVITY_LEVELS, Task, task


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class OrdinalLink:
    """Ordered-logit link from the regression score to grade probabilities.

    P(grade <= k) = sigmoid((cut_k - score) / scale); fitted by maximum likelihood on
    the validation month, so the grade probabilities are calibrated.
    """

    cuts: list[float] = field(default_factory=lambda: [1.5, 2.5, 3.5, 4.5])
    scale: float = 0.5

    def probabilities(self, score: np.ndarray) -> np.ndarray:
        cum = _sigmoid((np.asarray(self.cuts)[None, :] - score[:, None]) / self.scale)
        cum = np.hstack([np.zeros((len(score), 1)), cum, np.ones((len(score), 1))])
        return np.clip(np.diff(cum, axis=1), 1e-12, 1.0)

    @classmethod
    def fit(cls, score: np.ndarray, grade: np.ndarray) -> "OrdinalLink":
        k = grade.astype(int) - 1

        def nll(theta):
            first, *gaps, log_scale = theta
            cuts = np.cumsum([first, *np.exp(gaps)])
            p = cls(list(cuts), float(np.exp(log_scale))).probabilities(score)
            return -np.log(p[np.arange(len(k)), k]).mean()

        start = np.array([1.5, 0.0, 0.0, 0.0, np.log(0.5)])
        res = minimize(nll, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-4, "fatol": 1e-7})
        first, *gaps, log_scale = res.x
        return cls(list(map(float, np.cumsum([first, *np.exp(gaps)]))), float(np.exp(log_scale)))


def level(score: float, levels=SENSITIVITY_LEVELS) -> tuple[str, str]:
    """The (English, Chinese) level or band a value falls in."""
    chosen = levels[0]
    for bound, en, zh in levels:
        if score >= bound:
            chosen = (bound, en, zh)
    return chosen[1], chosen[2]


class TaskModel:
    """Booster + task declaration + calibration: indicators in, business outputs out."""

    def __init__(self, task_name: str | Task, booster: xgb.Booster, link: OrdinalLink | None = None,
                 population_average: float | None = None, best_iteration: int | None = None):
        self.task: Task = task_name if isinstance(task_name, Task) else task(task_name)
        self.booster = booster
        self.link = link
        self.population_average = population_average
        self.best_iteration = best_iteration
        #: Threads per prediction; serving scores one customer at a time, where OpenMP
        #: start-up costs more than it saves (set by ``load``).
        self.threads = 0

    # -- raw model output -------------------------------------------------------------
    def matrix(self, indicators: pd.DataFrame) -> xgb.DMatrix:
        """The model's input matrix, built from NumPy (categories as the library's codes).

        Same encoding as training (``training.data.encode``), without pandas' per-call
        overhead: a one-customer matrix costs microseconds, not milliseconds.
        """
        columns, types = [], []
        for ind in self.task.indicators:
            values = indicators[ind.id]
            if ind.kind == "category":
                lookup = {code: k for k, code in enumerate(ind.codes)}
                columns.append(np.array([lookup.get(v, np.nan) if isinstance(v, str) else np.nan
                                         for v in values], dtype=float))
                types.append("c")
            else:
                columns.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
                types.append("q")
        data = np.column_stack(columns) if columns else np.empty((len(indicators), 0))
        return xgb.DMatrix(data, feature_names=self.task.feature_names, feature_types=types,
                           enable_categorical=True, missing=np.nan, nthread=self.threads)

    def raw(self, indicators: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> np.ndarray:
        """Booster output: a score, a probability, or class probabilities."""
        return self.booster.predict(matrix if matrix is not None else self.matrix(indicators))

    def probabilities(self, indicators: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> np.ndarray:
        """Class probabilities for grade and channel, P(churn) for churn; scores otherwise."""
        return self.calibrate(self.raw(indicators, matrix))

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Booster output (``raw``, or ``inplace_predict``) in business terms: grade probabilities
        through the ordinal link, scores clipped to 0-100, probabilities as they are."""
        if self.task.kind == "ordinal":
            return self.link.probabilities(raw)
        if self.task.kind == "score":
            return np.clip(raw, 0, 100)
        return raw

    def contributions(self, indicators: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> np.ndarray:
        """Per-customer feature contributions (XGBoost's native TreeSHAP), last column the bias.

        Shape (n, features + 1); for the channel model (n, channels, features + 1).
        """
        return self.booster.predict(matrix if matrix is not None else self.matrix(indicators), pred_contribs=True)

    # -- business outputs --------------------------------------------------------------
    def predict(self, indicators: pd.DataFrame) -> pd.DataFrame:
        """The task's outputs per customer, in business terms."""
        t = self.task
        p = self.probabilities(indicators)
        out = pd.DataFrame(index=indicators.index)
        if t.kind == "ordinal":
            for k, code in enumerate(t.classes):
                out[f"p_grade_{code}"] = p[:, k]
            out["grade"] = predicted_grade(p)
        elif t.kind == "score":
            out["score"] = p
            out["level"] = [level(s)[0] for s in p]
        elif t.kind == "binary":
            out["probability"] = p
            out["band"] = [level(s, CHURN_BANDS)[0] for s in p]
        else:
            for k, c in enumerate(t.classes):
                out[f"p_{c}"] = p[:, k]
            order = np.argsort(-p, axis=1)
            out["ranking"] = [",".join(t.classes[i] for i in row) for row in order]
            out["best_channel"] = [t.classes[row[0]] for row in order]
        return out

    # -- persistence ---------------------------------------------------------------------
    def metadata(self) -> dict:
        meta = {"task": self.task.name, "link": asdict(self.link) if self.link else None,
                "population_average": self.population_average, "best_iteration": self.best_iteration}
        if self.task.tailored_indicators is not None:  # a province's model: its own indicator set
            meta["province"] = self.task.province
            meta["indicators"] = [asdict(i) for i in self.task.indicators]
        return meta

    def save(self, directory) -> None:
        from pathlib import Path

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(directory / "booster.ubj")
        (directory / "task_model.json").write_text(json.dumps(self.metadata(), indent=2))

    @classmethod
    def load(cls, directory) -> "TaskModel":
        from pathlib import Path

        directory = Path(directory)
        meta = json.loads((directory / "task_model.json").read_text())
        booster = xgb.Booster()
        booster.load_model(directory / "booster.ubj")
        booster.set_param({"nthread": 1})
        link = OrdinalLink(**meta["link"]) if meta["link"] else None
        t = task(meta["task"])
        if meta.get("indicators") is not None:
            t = t.for_indicators(meta["province"], [_indicator(d) for d in meta["indicators"]])
        model = cls(t, booster, link, meta["population_average"], meta["best_iteration"])
        model.threads = 1
        return model


def _indicator(d: dict):
    from features.indicators import Indicator

    return Indicator(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def predicted_grade(p: np.ndarray) -> np.ndarray:
    """Grade code from grade probabilities: the expected grade, rounded (QWK-friendly)."""
    expected = p @ np.arange(1, p.shape[1] + 1)
    return np.clip(np.rint(expected), 1, p.shape[1]).astype(int)
