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

    #: How the model answers, as the CRM sees it in each answer block (``method``).
    method = "xgboost"

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
        return self.dmatrix(_encoded(self.task, indicators))

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
    def feature_names(self) -> list[str]:
        return self.task.feature_names

    @property
    def effect(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """What a positive / negative contribution means (the kind's words)."""
        return self.task.kind.effect

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

    # -- serving: one shared float matrix (``serving.champions.Encoder``) ---------------
    def serve(self, encoded: np.ndarray) -> np.ndarray:
        """Business outputs of already encoded indicators (``Booster.inplace_predict``)."""
        return self.calibrate(self.booster.inplace_predict(encoded))

    def serve_contributions(self, encoded: np.ndarray) -> np.ndarray:
        """``contributions`` of already encoded indicators."""
        return self.contributions(None, self.dmatrix(encoded))

    def serve_told_contributions(self, encoded: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Contributions (n, features + 1) to the output each customer is told (``Kind.told``).

        TreeSHAP of a multi-class booster walks every class's trees, but reasons explain one
        class: each class's customers go through a booster of that class's trees alone. Same
        trees in the same order, so the same float32 sums (tested), at 1/classes of the work.
        """
        told = self.task.kind.told(p)
        if told is None:
            return self.serve_contributions(encoded)
        out = np.empty((len(encoded), len(self.feature_names) + 1), dtype=np.float32)
        for c in np.unique(told):
            rows = np.flatnonzero(told == c)
            out[rows] = self.class_booster(int(c)).predict(self.dmatrix(encoded[rows]), pred_contribs=True)
        return out

    def class_booster(self, c: int) -> xgb.Booster:
        """A booster of class ``c``'s trees alone (built once; a margin, not probabilities)."""
        boosters = self.__dict__.setdefault("_class_boosters", {})
        if c not in boosters:
            boosters[c] = _one_class(self.booster, c)
            boosters[c].set_param({"nthread": self.threads})
        return boosters[c]

    def answer_blocks(self, encoded: np.ndarray, p: np.ndarray, config=None) -> list[dict]:
        """The task's answer block per customer (without reasons), naming the method that answered."""
        blocks = self.task.kind.answer_blocks(p, self.calibration, config)
        for block in blocks:
            block["method"] = self.method
        return blocks

    def use_threads(self, threads: int) -> None:
        """XGBoost threads per prediction (0: all cores)."""
        self.threads = threads
        self.booster.set_param({"nthread": threads})
        for booster in self.__dict__.get("_class_boosters", {}).values():
            booster.set_param({"nthread": threads})

    # -- business outputs --------------------------------------------------------------
    def predict(self, indicators: pd.DataFrame) -> pd.DataFrame:
        """The task's outputs per customer, in business terms (the answer's block without reasons)."""
        encoded = _encoded(self.task, indicators)
        return _flat(self.answer_blocks(encoded, self.serve(encoded)), indicators.index)

    # -- persistence ---------------------------------------------------------------------
    def metadata(self) -> dict:
        return _metadata(
            self.task, method=self.method, calibration=self.calibration, best_iteration=self.best_iteration
        )

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
        model = cls(_task_of(meta), booster, _calibration(meta), meta["best_iteration"])
        model.threads = 1
        return model


def _one_class(booster: xgb.Booster, c: int) -> xgb.Booster:
    """Class ``c`` of a multi-class booster as a one-output booster: its trees, in order, and its
    base score (the model's JSON, trees kept as they are, categorical splits included)."""
    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    trees_of = learner["gradient_booster"]["model"]
    keep = [i for i, group in enumerate(trees_of["tree_info"]) if group == c]
    trees = [dict(trees_of["trees"][i], id=k) for k, i in enumerate(keep)]
    trees_of.update(
        trees=trees,
        tree_info=[0] * len(trees),
        iteration_indptr=list(range(len(trees) + 1)),
        gbtree_model_param={**trees_of["gbtree_model_param"], "num_trees": str(len(trees))},
    )
    base = learner["learner_model_param"]["base_score"]
    learner["learner_model_param"].update(
        num_class="0", base_score=str(json.loads(base)[c]) if base.startswith("[") else base
    )
    learner["objective"] = {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}
    one = xgb.Booster()
    one.load_model(bytearray(json.dumps(model).encode()))
    return one


class ScorecardModel:
    """The credit specification's scorecard (``training.scorecard.Scorecard``) answering like a
    ``TaskModel``: the same encoded indicators in, grade "probabilities" (1 for the grade the score
    falls in: the scorecard is a rule, not a guess), reasons in score points, and its 0-100 credit
    score in the answer block.

    The grade is the score's interval between the scorecard's own cut-offs; a province file's
    expected-grade ``grade_cutoffs`` (made for the supervised model's probabilities) leave it
    unchanged. A reason's contribution is ``100 · w_j · (x_j − typical_j)``: the points an
    indicator adds to or takes from the score against the typical customer of the reference
    (``Normaliser.fill``); the bias column holds the typical customer's score.
    """

    method = "scorecard"
    #: contributions are score points: more of them raises the grade, whatever the task's kind
    effect = (("raises the credit grade", "提升信用等级"), ("lowers the credit grade", "降低信用等级"))

    def __init__(self, task_name: str | Task, card):
        self.task: Task = task_name if isinstance(task_name, Task) else task(task_name)
        self.card = card
        self.calibration: dict = {}
        self.best_iteration = None
        self.threads = 0
        names = self.task.feature_names
        absent = [i for i in card.indicators if i not in names]
        if absent:
            from core.errors import ConfigurationError

            raise ConfigurationError(
                f"the scorecard scores {', '.join(absent)}, which the {self.task.name} model's "
                f"indicators ({self.task.service}) do not hold"
            )
        self._columns = np.array([names.index(i) for i in card.indicators], dtype=int)
        by_id = {ind.id: ind for ind in self.task.indicators}
        # a category arrives as the index of its code in the library: its score by index
        self._by_index = {
            k: np.array([card.normalisers[i].scores.get(code, np.nan) for code in by_id[i].codes])
            for k, i in enumerate(card.indicators)
            if card.normalisers[i].scores is not None
        }
        self._weights = np.array(list(card.weights.values()))
        self._typical = np.array([card.normalisers[i].fill for i in card.indicators])

    @property
    def feature_names(self) -> list[str]:
        return self.task.feature_names

    def normalised(self, encoded: np.ndarray) -> np.ndarray:
        """Customers × the scorecard's indicators in [0, 1] (higher = better credit), typical where
        missing."""
        x = np.asarray(encoded, dtype=float)[:, self._columns]
        out = np.empty_like(x)
        for k, i in enumerate(self.card.indicators):
            norm = self.card.normalisers[i]
            if k in self._by_index:
                lookup = self._by_index[k]
                known = ~np.isnan(x[:, k])
                values = np.full(len(x), np.nan)
                values[known] = lookup[x[known, k].astype(int)]
                out[:, k] = np.where(np.isnan(values), norm.fill, values)
            else:
                out[:, k] = norm(x[:, k])
        return out

    def score_encoded(self, encoded: np.ndarray) -> np.ndarray:
        """The credit score 0-100 (higher = better credit)."""
        return 100.0 * self.normalised(encoded) @ self._weights

    def calibrate(self, score: np.ndarray) -> np.ndarray:
        """Grade "probabilities" of scores: 1 for the grade between the cut-offs the score reaches."""
        from training.scorecard import grades_of

        grades = grades_of(np.asarray(score, dtype=float), self.card.cutoffs)
        p = np.zeros((len(grades), len(self.task.classes)))
        p[np.arange(len(grades)), grades - 1] = 1.0
        return p

    def serve(self, encoded: np.ndarray) -> np.ndarray:
        return self.calibrate(self.score_encoded(encoded))

    def serve_contributions(self, encoded: np.ndarray) -> np.ndarray:
        """Points each indicator adds or takes against the typical customer; last column the typical score."""
        points = 100.0 * (self.normalised(encoded) - self._typical[None, :]) * self._weights[None, :]
        out = np.zeros((len(points), len(self.task.feature_names) + 1))
        out[:, self._columns] = points
        out[:, -1] = 100.0 * float(self._typical @ self._weights)
        return out

    def serve_told_contributions(self, encoded: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.serve_contributions(encoded)

    def answer_blocks(self, encoded: np.ndarray, p: np.ndarray, config=None) -> list[dict]:
        blocks = self.task.kind.answer_blocks(p, self.calibration)  # its own cut-offs, not the file's
        for block, score in zip(blocks, self.score_encoded(encoded)):
            block["method"] = self.method
            block["credit_score"] = round(float(score), 1)
        return blocks

    def use_threads(self, threads: int) -> None:
        self.threads = threads

    # -- the TaskModel interface on indicator frames --------------------------------------
    def raw(self, indicators: pd.DataFrame, matrix=None) -> np.ndarray:
        return self.score_encoded(_encoded(self.task, indicators))

    def probabilities(self, indicators: pd.DataFrame, matrix=None) -> np.ndarray:
        return self.calibrate(self.raw(indicators))

    def contributions(self, indicators: pd.DataFrame, matrix=None) -> np.ndarray:
        return self.serve_contributions(_encoded(self.task, indicators))

    def predict(self, indicators: pd.DataFrame) -> pd.DataFrame:
        encoded = _encoded(self.task, indicators)
        return _flat(self.answer_blocks(encoded, self.serve(encoded)), indicators.index)

    # -- persistence ---------------------------------------------------------------------
    def metadata(self) -> dict:
        return _metadata(self.task, method=self.method)

    def save(self, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        card = json.dumps(self.card.to_dict(), indent=2, ensure_ascii=False)
        (directory / "scorecard.json").write_text(card, encoding="utf-8")
        (directory / "task_model.json").write_text(json.dumps(self.metadata(), indent=2))

    @classmethod
    def load(cls, directory) -> ScorecardModel:
        from training.scorecard import Scorecard

        directory = Path(directory)
        meta = json.loads((directory / "task_model.json").read_text())
        card = Scorecard.from_dict(json.loads((directory / "scorecard.json").read_text(encoding="utf-8")))
        return cls(_task_of(meta), card)


#: What a saved model's ``method`` loads with.
MODEL_CLASSES = {TaskModel.method: TaskModel, ScorecardModel.method: ScorecardModel}


def load_model(directory) -> TaskModel | ScorecardModel:
    """A saved model of either method (``task_model.json`` says which; older ones are XGBoost)."""
    meta = json.loads((Path(directory) / "task_model.json").read_text())
    return MODEL_CLASSES[meta.get("method", TaskModel.method)].load(directory)


def _metadata(t: Task, **fields) -> dict:
    """``task_model.json``: the task, the model's own fields, and a province's indicator set."""
    meta = {"task": t.name, **fields}
    if t.tailored_indicators is not None:  # a province's model: its own indicator set
        meta["province"] = t.province
        meta["indicators"] = [asdict(i) for i in t.indicators]
    return meta


def _task_of(meta: dict) -> Task:
    t = task(meta["task"])
    if meta.get("indicators") is not None:
        t = t.for_indicators(meta["province"], [_indicator(d) for d in meta["indicators"]])
    return t


def _encoded(t: Task, indicators: pd.DataFrame) -> np.ndarray:
    """The task's indicators as the shared float matrix holds them (``core.indicators.encoded``)."""
    columns = [lib.encoded(ind, indicators[ind.id]) for ind in t.indicators]
    return np.column_stack(columns) if columns else np.empty((len(indicators), 0))


def _flat(blocks: list[dict], index: pd.Index) -> pd.DataFrame:
    flat = [{k: ",".join(v) if isinstance(v, list) else v for k, v in b.items()} for b in blocks]
    return pd.json_normalize(flat).set_axis(index)


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
