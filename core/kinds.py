"""The four kinds of evaluation model, and everything that differs between them.

An ordinal grade, a 0-100 score, a binary propensity and a ranking of classes differ in
how the label is encoded, what XGBoost optimises, how raw output is calibrated, how the
result is judged and drawn, how a reason is worded, what is recorded for monitoring,
what the CRM's answer and file carry. Each kind answers those questions once; every
stage asks the task's kind and never branches on it (scikit-learn's lesson: one shape
for every estimator). A kind holds business parameters (the grades, the levels, the
classes), a task holds its kind (``core.tasks``).

Heavy libraries (scipy, scikit-learn, matplotlib, pyarrow) are imported where used, so
the service that only scores never loads a plotting library.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: (lower bound, English, Chinese) per level of a score or band of a probability.
Levels = tuple[tuple[float, str, str], ...]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def level_of(value: float, levels: Levels) -> tuple[str, str]:
    """The (English, Chinese) level a value falls in."""
    chosen = levels[0]
    for bound, en, zh in levels:
        if value >= bound:
            chosen = (bound, en, zh)
    return chosen[1], chosen[2]


def levels_of(values: np.ndarray, levels: Levels) -> np.ndarray:
    """``level_of`` every value at once (English names)."""
    bounds = np.array([bound for bound, _, _ in levels])
    names = np.array([en for _, en, _ in levels])
    return names[np.clip(np.searchsorted(bounds, values, side="right") - 1, 0, None)]


class Kind:
    """What a kind of model does at each stage. Subclasses implement the methods that raise
    ``NotImplementedError``; the others hold the common case."""

    name: str
    objective: str
    eval_metric: str  # XGBoost's validation metric: pruned and early-stopped on
    #: XGBoost's metric closest to the headline, and whether larger is better: what a small
    #: table's cross-validation chooses settings by (its folds are too small for a loss to rank
    #: settings the way the headline does)
    selection_metric: tuple[str, bool] = ("rmse", False)
    headline: str  # the business metric the model-to-oracle ratio is stated on
    headline_label: str  # its short name in tables
    #: what a positive / negative contribution means, (English, Chinese)
    effect: tuple[tuple[str, str], tuple[str, str]]
    #: +1 when the model's output rises as the library's ``credit_direction`` says credit improves
    #: (a grade), -1 when it falls (a risk): the sign of its monotone constraints
    monotone_sign: int = 1
    prediction_is_category: bool = False  # the recorded prediction, as drift tests read it
    target_is_category: bool = False  # the label, as drift tests read it
    recorded_dtype: str | None = None  # pandas dtype of the recorded prediction column
    answer_field: str  # the field of an answer block that holds the recorded prediction

    # -- training ----------------------------------------------------------------------
    def xgb_params(self) -> dict:
        return {"objective": self.objective, "eval_metric": self.eval_metric}

    def encode_label(self, values: pd.Series) -> np.ndarray:
        """The label as XGBoost reads it."""
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    def fit_calibration(self, raw_valid: np.ndarray, y_valid: np.ndarray, y_train: np.ndarray) -> dict:
        """What turns raw booster output into business terms, fitted on held-out rows."""
        return {}

    def calibrate(self, raw: np.ndarray, calibration: dict) -> np.ndarray:
        """Booster output in business terms (probabilities or scores)."""
        return raw

    def metrics(self, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def summary(self, m: dict[str, float]) -> str:
        """The quality table's second figure, from ``test_`` metrics."""
        raise NotImplementedError

    def truth_metrics(self, p: np.ndarray, oracle_p: np.ndarray) -> dict[str, float]:
        """Metrics against the generator's truth itself where it is more than a label's odds (the
        credit grade: the true grades); none for most kinds."""
        return {}

    def plots(
        self, task, y: np.ndarray, p: np.ndarray, oracle_p: np.ndarray | None, directory: Path
    ) -> list[Path]:
        return []

    def strata(self, y: np.ndarray) -> np.ndarray:
        """Groups a split by customer keeps in proportion: the classes (a score: its quintiles)."""
        return np.nan_to_num(np.asarray(y, dtype=float), nan=-1).astype(int)

    def fit_linear(self, Z: np.ndarray, y: np.ndarray):
        """The plain baseline (``training.baselines``): a linear model on the design ``Z``,
        returned as a function from a design to raw output, as the booster's would be. Least
        squares with a light ridge penalty; classifying kinds use a logistic regression."""
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=1.0).fit(Z, y)
        return model.predict

    def judgeable(self, target: pd.Series, min_per_class: int) -> bool:
        """Whether matured labels can judge the metric (a binary AUC needs both classes)."""
        return True

    def expected_rate(self, p: np.ndarray) -> float | None:
        """The share of customers the model expects the event for (a binary kind's mean
        probability), which matured labels can confirm; None when outputs are not a rate."""
        return None

    # -- explaining --------------------------------------------------------------------
    def told(self, p: np.ndarray) -> np.ndarray | None:
        """The output each customer's reasons explain, where the model has several (None: one)."""
        return None

    def explained(self, contributions: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Per-customer contributions (n, features + 1) to the outcome the customer is told;
        contributions already computed for that outcome alone (2-D) are returned as they are."""
        told = self.told(p)
        if told is None or contributions.ndim == 2:
            return contributions
        return contributions[np.arange(len(p)), told]

    # -- answering ---------------------------------------------------------------------
    def decide(self, p: np.ndarray, config=None, features=None) -> np.ndarray:
        """The recorded prediction of each customer (a province file may set grade cut-offs;
        ``features``, the customers' indicators, feed rules over the model)."""
        raise NotImplementedError

    def answer_blocks(self, p: np.ndarray, calibration: dict, config=None) -> list[dict]:
        """Each customer's block of the ``/score`` answer (reasons added by the caller)."""
        raise NotImplementedError

    def crm_fields(self, task_name: str) -> list[tuple[str, str]]:
        """The CRM interface file's columns as (name, Arrow type name); the first is the prediction."""
        raise NotImplementedError

    def crm_columns(self, task_name: str, p: np.ndarray, config=None, features=None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def overrule(self, task_name: str, blocks: list[dict], features) -> None:
        """Apply the kind's rules over the model to answer blocks, in place (``features``: the
        customers' indicators, row by row with ``blocks``). Most kinds have none."""


@dataclass
class OrdinalLink:
    """Ordered-logit link from a regression score to grade probabilities.

    P(grade <= k) = sigmoid((cut_k - score) / scale); fitted by maximum likelihood on
    the validation month, so the grade probabilities are calibrated.
    """

    cuts: list[float]
    scale: float

    def probabilities(self, score: np.ndarray) -> np.ndarray:
        cum = _sigmoid((np.asarray(self.cuts)[None, :] - score[:, None]) / self.scale)
        cum = np.hstack([np.zeros((len(score), 1)), cum, np.ones((len(score), 1))])
        return np.clip(np.diff(cum, axis=1), 1e-12, 1.0)

    @classmethod
    def fit(cls, score: np.ndarray, grade: np.ndarray, classes: int) -> OrdinalLink:
        from scipy.optimize import minimize

        k = grade.astype(int) - 1

        def nll(theta):
            first, *gaps, log_scale = theta
            cuts = np.cumsum([first, *np.exp(gaps)])
            p = cls(list(cuts), float(np.exp(log_scale))).probabilities(score)
            return -np.log(p[np.arange(len(k)), k]).mean()

        start = np.array([1.5, *np.zeros(classes - 2), np.log(0.5)])
        res = minimize(
            nll, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-4, "fatol": 1e-7}
        )
        first, *gaps, log_scale = res.x
        return cls(list(map(float, np.cumsum([first, *np.exp(gaps)]))), float(np.exp(log_scale)))


def missed_judgement_rate(true, graded) -> float:
    """漏判率, missed judgement: of the customers whose credit is truly poor, the share graded high.

    The specification (指标结果测试): "漏判：信用度本来比较差，评估结果比较高，落入高端" — "missed
    judgement: the credit is in truth rather poor, the evaluation comes out rather high, falling into
    the high end". Truly poor: true grade 1 or 2 (信用极差, 信用较差); the high end: graded 4 or 5
    (信用较好, 信用极好). NaN when no customer is truly poor.
    """
    t, g = np.asarray(true, int), np.asarray(graded, int)
    poor = t <= 2
    return float((g[poor] >= 4).mean()) if poor.any() else float("nan")


def misjudgement_rate(true, graded) -> float:
    """误判率, misjudgement: of the customers whose credit is normal, the share graded low.

    The specification (指标结果测试): "误判：信用度本来正常，属于中等水平，评估结果比较低，落入低端" —
    "misjudgement: the credit is in truth normal, of the middle level, the evaluation comes out
    rather low, falling into the low end". Normal is the middle level: true grade 3 (信用一般, average)
    only; the low end: graded 1 or 2 (信用极差, 信用较差). A truly good or excellent customer graded
    low is a worse error the specification does not name (``good_graded_low_rate``). NaN when no
    customer is of average credit.
    """
    t, g = np.asarray(true, int), np.asarray(graded, int)
    normal = t == 3
    return float((g[normal] <= 2).mean()) if normal.any() else float("nan")


def good_graded_low_rate(true, graded) -> float:
    """Of the customers of truly good or excellent credit (4-5), the share graded 1-2."""
    t, g = np.asarray(true, int), np.asarray(graded, int)
    good = t >= 4
    return float((g[good] <= 2).mean()) if good.any() else float("nan")


def expected_grade(p: np.ndarray) -> np.ndarray:
    return p @ np.arange(1, p.shape[1] + 1)


def predicted_grade(p: np.ndarray) -> np.ndarray:
    """Grade code from grade probabilities: the expected grade, rounded (QWK-friendly)."""
    return np.clip(np.rint(expected_grade(p)), 1, p.shape[1]).astype(int)


@dataclass(frozen=True)
class GradeCap:
    """A rule over the model: a customer whose ``indicator`` equals ``value`` is never graded above
    ``highest``. ``text_en``/``text_zh`` name the rule in the reasons ({grade}: the model's grade,
    {highest}). Indicators absent from the features leave every customer to the model."""

    name: str
    indicator: str
    value: int
    highest: int
    text_en: str
    text_zh: str

    def applies(self, features, n: int) -> np.ndarray:
        """Which of ``n`` customers the rule holds for."""
        if features is None or self.indicator not in features:
            return np.zeros(n, dtype=bool)
        values = pd.to_numeric(pd.Series(np.asarray(features[self.indicator], dtype=object)), errors="coerce")
        return (values == self.value).to_numpy(dtype=bool)

    def reason(self, task_name: str, grade: int) -> dict:
        """The rule as a reason item of the answer (``code`` ``<task>:rule:<name>``)."""
        return {
            "code": f"{task_name}:rule:{self.name}",
            "indicator": self.indicator,
            "value": str(self.value),
            "contribution": None,
            "rule": self.name,
            "text_en": self.text_en.format(grade=grade, highest=self.highest),
            "text_zh": self.text_zh.format(grade=grade, highest=self.highest),
        }


class OrdinalGrade(Kind):
    """Ordered grades 1 (worst) .. n (best): a regression score through an ordered-logit link,
    then the rules over the model (``caps``)."""

    name, objective, eval_metric, headline = "ordinal", "reg:squarederror", "rmse", "quadratic_weighted_kappa"
    headline_label = "QWK"
    effect = (("raises the credit grade", "提升信用等级"), ("lowers the credit grade", "降低信用等级"))
    prediction_is_category = target_is_category = True
    recorded_dtype = "Int64"
    answer_field = "code"

    def __init__(self, grades: tuple[tuple[int, str, str], ...], caps: tuple[GradeCap, ...] = ()):
        self.grades = grades  # (code, Chinese, English), worst first
        self.classes = tuple(str(g[0]) for g in grades)
        self.caps = caps

    def fit_calibration(self, raw_valid, y_valid, y_train) -> dict:
        link = OrdinalLink.fit(raw_valid, y_valid, len(self.grades))
        return {"cuts": link.cuts, "scale": link.scale}

    def calibrate(self, raw, calibration):
        return OrdinalLink(calibration["cuts"], calibration["scale"]).probabilities(raw)

    def metrics(self, y, p):
        """Kappa and the credit specification's two error rates against true grades: 漏判率 (truly
        1-2 graded 4-5, ``missed_judgement_rate``) and 误判率 (truly 3, "属于中等水平", graded 1-2,
        ``misjudgement_rate``), and the rate of truly good or excellent customers graded 1-2."""
        from sklearn.metrics import cohen_kappa_score

        graded, true_grade = predicted_grade(p), y.astype(int)
        return {
            "quadratic_weighted_kappa": float(cohen_kappa_score(true_grade, graded, weights="quadratic")),
            "missed_judgement_rate": missed_judgement_rate(true_grade, graded),
            "misjudgement_rate": misjudgement_rate(true_grade, graded),
            "good_graded_low_rate": good_graded_low_rate(true_grade, graded),
            "exact_accuracy": float((graded == true_grade).mean()),
        }

    def summary(self, m):
        return f"missed {m['test_missed_judgement_rate']:.1%}, misjudged {m['test_misjudgement_rate']:.1%}"

    def truth_metrics(self, p, oracle_p):
        """The specification's test (指标结果测试) against the true grades (the oracle's rounded
        expected grade): kappa, 漏判率, 误判率."""
        return OrdinalGrade.metrics(self, predicted_grade(oracle_p), p)

    def plots(self, task, y, p, oracle_p, directory):
        from core import charts

        return [
            charts.confusion(task, y.astype(int) - 1, predicted_grade(p) - 1, directory),
            charts.grade_calibration(y, p, directory),
        ]

    def modelled(self, p, config=None) -> np.ndarray:
        """The model's grade: the expected grade rounded, or through the province's cut-offs."""
        cutoffs = getattr(config, "grade_cutoffs", None)
        if cutoffs is None:
            return predicted_grade(p)
        return 1 + (expected_grade(p)[:, None] >= np.asarray(cutoffs)[None, :]).sum(axis=1)

    def capped(self, grades: np.ndarray, features) -> tuple[np.ndarray, list[GradeCap | None]]:
        """The grades after the rules, and the rule that lowered each grade (None: the model's)."""
        grades = np.asarray(grades).copy()
        lowered_by: list[GradeCap | None] = [None] * len(grades)
        for cap in self.caps:
            lowered = cap.applies(features, len(grades)) & (grades > cap.highest)
            grades[lowered] = cap.highest
            for i in np.flatnonzero(lowered):
                lowered_by[i] = lowered_by[i] or cap
        return grades, lowered_by

    def decide(self, p, config=None, features=None):
        return self.capped(self.modelled(p, config), features)[0]

    def answer_blocks(self, p, calibration, config=None):
        names = {g[0]: (g[1], g[2]) for g in self.grades}
        return [
            {
                "code": int(g),
                "label_zh": names[int(g)][0],
                "label_en": names[int(g)][1],
                "probabilities": {c: round(float(p[i, k]), 4) for k, c in enumerate(self.classes)},
            }
            for i, g in enumerate(self.decide(p, config))
        ]

    def crm_fields(self, task_name):
        return [(task_name, "int8"), (f"{task_name}_label_zh", "string")]

    def crm_columns(self, task_name, p, config=None, features=None):
        grades = self.decide(p, config, features)
        labels = np.array([""] + [g[1] for g in self.grades])  # by grade code
        return {task_name: grades.astype(np.int8), f"{task_name}_label_zh": labels[grades]}

    def overrule(self, task_name, blocks, features):
        """Cap the blocks' grades by the rules; a capped block's reasons start with the rule."""
        if not self.caps or not blocks:
            return
        names = {g[0]: (g[1], g[2]) for g in self.grades}
        grades, lowered_by = self.capped(np.array([b["code"] for b in blocks]), features)
        for block, grade, cap in zip(blocks, grades, lowered_by):
            if cap is None:
                continue
            reason = cap.reason(task_name, block["code"])
            block.update(code=int(grade), label_zh=names[int(grade)][0], label_en=names[int(grade)][1])
            block["reasons"] = [reason, *block.get("reasons", [])]


class Score(Kind):
    """A 0-100 score with levels and the population's average level."""

    name, objective, eval_metric, headline = "score", "reg:squarederror", "rmse", "spearman"
    headline_label = "Spearman"
    effect = (("raises the sensitivity", "提高敏感度"), ("lowers the sensitivity", "降低敏感度"))
    answer_field = "score"

    def __init__(self, levels: Levels):
        self.levels = levels

    def fit_calibration(self, raw_valid, y_valid, y_train):
        return {"population_average": float(np.mean(y_train))}

    def strata(self, y):
        edges = np.unique(np.nanquantile(y, [0.2, 0.4, 0.6, 0.8])) if len(y) else []
        return np.digitize(y, edges)

    def calibrate(self, raw, calibration):
        return np.clip(raw, 0, 100)

    def metrics(self, y, p):
        from scipy.stats import spearmanr

        bounds = [b for b, _, _ in self.levels[1:]]
        return {
            "spearman": float(spearmanr(y, p).statistic),
            "level_accuracy": float((np.digitize(y, bounds) == np.digitize(p, bounds)).mean()),
            "mae": float(np.abs(y - p).mean()),
        }

    def summary(self, m):
        return f"levels {m['test_level_accuracy']:.1%}"

    def plots(self, task, y, p, oracle_p, directory):
        from core import charts

        return [charts.score_scatter(task, y, p, directory)]

    def decide(self, p, config=None, features=None):
        return np.round(p, 1)

    def answer_blocks(self, p, calibration, config=None):
        average = round(calibration.get("population_average") or 0.0, 1)
        out = []
        for score in p:
            en, zh = level_of(float(score), self.levels)
            out.append(
                {"score": round(float(score), 1), "level": en, "level_zh": zh, "population_average": average}
            )
        return out

    def crm_fields(self, task_name):
        return [(task_name, "float64"), (f"{task_name}_level", "string")]

    def crm_columns(self, task_name, p, config=None, features=None):
        # rounded as float64: a float32 80.8 written as a double reads 80.80000305175781
        return {
            task_name: np.round(np.asarray(p, np.float64), 1),
            f"{task_name}_level": levels_of(p, self.levels),
        }


#: Decimals of a probability in the CRM interface file.
CRM_PROBABILITY_DECIMALS = 6


class Binary(Kind):
    """The probability of an event (churn next month), with risk bands."""

    name, objective, eval_metric, headline = "binary", "binary:logistic", "logloss", "roc_auc"
    selection_metric = ("auc", True)
    headline_label = "AUC"
    effect = (("raises churn risk", "推高流失风险"), ("lowers churn risk", "降低流失风险"))
    target_is_category = True
    answer_field = "probability"

    def __init__(self, bands: Levels):
        self.bands = bands

    def metrics(self, y, p):
        from sklearn.metrics import average_precision_score, roc_auc_score

        cut = np.quantile(p, 0.9)
        lift = float(y[p >= cut].mean() / y.mean()) if y.mean() > 0 else float("nan")
        return {
            "roc_auc": float(roc_auc_score(y, p)),
            "pr_auc": float(average_precision_score(y, p)),
            "top_decile_lift": lift,
            "churn_rate": float(y.mean()),
        }

    def summary(self, m):
        return f"lift@10% {m['test_top_decile_lift']:.2f}"

    def plots(self, task, y, p, oracle_p, directory):
        from core import charts

        return charts.binary(task, y, p, oracle_p, directory)

    def fit_linear(self, Z, y):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, max_iter=2000).fit(Z, y.astype(int))
        positive = list(model.classes_).index(1)
        return lambda z: model.predict_proba(z)[:, positive]

    def judgeable(self, target, min_per_class):
        counts = pd.to_numeric(target.dropna(), errors="coerce").value_counts()
        return counts.get(1, 0) >= min_per_class and counts.get(0, 0) >= min_per_class

    def expected_rate(self, p):
        return float(np.mean(p))

    def decide(self, p, config=None, features=None):
        return np.round(p, 4)

    def answer_blocks(self, p, calibration, config=None):
        out = []
        for probability in p:
            en, zh = level_of(float(probability), self.bands)
            out.append({"probability": round(float(probability), 4), "band": en, "band_zh": zh})
        return out

    def crm_fields(self, task_name):
        return [(f"{task_name}_probability", "float64"), (f"{task_name}_band", "string")]

    def crm_columns(self, task_name, p, config=None, features=None):
        # six decimals: a campaign ranks customers by it, and 4 decimals tied most of a low-risk base
        probability = np.round(np.asarray(p, np.float64), CRM_PROBABILITY_DECIMALS)
        return {f"{task_name}_probability": probability, f"{task_name}_band": levels_of(p, self.bands)}


class RiskGrade(OrdinalGrade):
    """Ordered grades learned from an outcome instead of grade labels (the credit grade: no province
    has a column of true grades, every province has the evidence that follows).

    XGBoost estimates the probability of a bad event in the months after the snapshot (the credit
    outcome, ``features.outcomes``); the grades are bands of that risk, cut where ``shares`` of the
    calibration rows fall, riskiest first (grade 1 the riskiest 5%, ..., grade 5 the safest 10% with
    the group's default shares). A grade's "probabilities" are 1 for its band: the band is a rule on
    the estimated risk. Judged on the outcome: how well the grades separate the customers a bad
    event followed (``grade_auc``, ties within a grade counted half), the event rate of the low and
    the high grades, and the outcome's 漏判 (a customer a bad event followed, graded 4-5). The
    specification's 误判率 needs true grades: it is measured against the generator's truth.
    """

    name, objective, eval_metric, headline = "risk_grade", "binary:logistic", "logloss", "grade_auc"
    selection_metric = ("auc", True)
    headline_label = "AUC"
    # the model's output is the risk of a bad event: more of it lowers the grade
    effect = (("lowers the credit grade", "降低信用等级"), ("raises the credit grade", "提升信用等级"))
    monotone_sign = -1

    def __init__(
        self,
        grades: tuple[tuple[int, str, str], ...],
        shares: tuple[float, ...],
        caps: tuple[GradeCap, ...] = (),
    ):
        super().__init__(grades, caps)
        self.shares = tuple(shares)

    fit_linear = Binary.fit_linear
    judgeable = Binary.judgeable

    def fit_calibration(self, raw_valid, y_valid, y_train) -> dict:
        riskiest = np.cumsum(self.shares)[:-1]  # 0.05, 0.20, 0.70, 0.90 of customers at or above
        cutoffs = np.quantile(np.asarray(raw_valid, dtype=float), 1.0 - riskiest)
        return {
            "risk_cutoffs": [float(c) for c in cutoffs],
            "event_rate": float(np.nanmean(np.asarray(y_train, dtype=float))),
        }

    def grades_of_risk(self, risk: np.ndarray, calibration: dict) -> np.ndarray:
        """1 + the number of risk cut-offs (descending) the risk stays below."""
        cutoffs = np.asarray(calibration["risk_cutoffs"], dtype=float)
        return 1 + (np.asarray(risk, dtype=float)[:, None] < cutoffs[None, :]).sum(axis=1)

    def calibrate(self, raw, calibration):
        if "risk_cutoffs" not in calibration:  # a model registered before the outcome: grade labels
            return OrdinalGrade.calibrate(self, raw, calibration)
        grades = self.grades_of_risk(raw, calibration)
        p = np.zeros((len(grades), len(self.grades)))
        p[np.arange(len(grades)), grades - 1] = 1.0
        return p

    def metrics(self, y, p):
        from sklearn.metrics import roc_auc_score

        y = np.asarray(y, dtype=float)
        graded = predicted_grade(p) if np.ndim(p) == 2 else np.asarray(p, int)
        bad = y == 1
        low, high = graded <= 2, graded >= 4
        low_rate = float(y[low].mean()) if low.any() else float("nan")
        high_rate = float(y[high].mean()) if high.any() else float("nan")
        both = bad.any() and (~bad).any()
        score = expected_grade(p) if np.ndim(p) == 2 else graded
        return {
            "grade_auc": float(roc_auc_score(~bad, score)) if both else float("nan"),
            "missed_judgement_rate": float((graded[bad] >= 4).mean()) if bad.any() else float("nan"),
            "low_grade_event_rate": low_rate,
            "high_grade_event_rate": high_rate,
            "event_rate": float(y.mean()) if len(y) else float("nan"),
        }

    def summary(self, m):
        text = (
            f"bad events: grades 1-2 {m['test_low_grade_event_rate']:.1%}, "
            f"4-5 {m['test_high_grade_event_rate']:.1%}; missed {m['test_missed_judgement_rate']:.1%}"
        )
        if np.isfinite(m.get("truth_misjudgement_rate", np.nan)):  # the synthetic world's true grades
            text += (
                f"; vs true grades 漏判 {m['truth_missed_judgement_rate']:.1%}, "
                f"误判 {m['truth_misjudgement_rate']:.1%}"
            )
        return text

    def plots(self, task, y, p, oracle_p, directory):
        from core import charts

        return [charts.grade_event_rates(task, np.asarray(y, float), predicted_grade(p), directory)]

    def expected_rate(self, p):
        return None


class Ranking(Kind):
    """Classes ranked by probability (the customer's channels, best first)."""

    name, objective, eval_metric, headline = "multiclass", "multi:softprob", "mlogloss", "top1_accuracy"
    selection_metric = ("merror", False)
    headline_label = "top-1"
    effect = (("favours this channel", "偏好该渠道"), ("weighs against this channel", "不利于该渠道"))
    prediction_is_category = target_is_category = True

    def __init__(self, classes: tuple[str, ...], noun: str):
        self.classes = classes
        self.noun = noun  # what a class is: best_<noun>, <noun>_ranking
        self.answer_field = f"best_{noun}"

    def xgb_params(self):
        return {**super().xgb_params(), "num_class": len(self.classes)}

    def encode_label(self, values):
        return values.map({c: k for k, c in enumerate(self.classes)}).to_numpy(dtype=float)

    def metrics(self, y, p):
        y = y.astype(int)
        order = np.argsort(-p, axis=1)
        out = {
            "top1_accuracy": float((order[:, 0] == y).mean()),
            "top2_accuracy": float(((order[:, 0] == y) | (order[:, 1] == y)).mean()),
        }
        for k, c in enumerate(self.classes):
            mask = y == k
            out[f"recall_{c}"] = float((order[mask, 0] == k).mean()) if mask.any() else float("nan")
        return out

    def summary(self, m):
        return f"top-2 {m['test_top2_accuracy']:.1%}"

    def plots(self, task, y, p, oracle_p, directory):
        from core import charts

        return [charts.confusion(task, y.astype(int), p.argmax(axis=1), directory)]

    def fit_linear(self, Z, y):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, max_iter=2000).fit(Z, y.astype(int))
        seen = model.classes_.astype(int)

        def raw(z):
            full = np.zeros((len(z), len(self.classes)))  # classes absent in training stay at 0
            full[:, seen] = model.predict_proba(z)
            return full

        return raw

    def told(self, p):
        return p.argmax(axis=1)  # the most likely channel's reasons

    def decide(self, p, config=None, features=None):
        return np.asarray(self.classes, dtype=object)[np.argmax(p, axis=1)]

    def ranked(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes)[np.argsort(-p, axis=1)]

    def answer_blocks(self, p, calibration, config=None):
        return [
            {
                "ranking": list(ranking),
                self.answer_field: ranking[0],
                "probabilities": {c: round(float(p[i, k]), 4) for k, c in enumerate(self.classes)},
            }
            for i, ranking in enumerate(self.ranked(p).tolist())
        ]

    def crm_fields(self, task_name):
        return [(self.answer_field, "string"), (f"{self.noun}_ranking", "string")]

    def crm_columns(self, task_name, p, config=None, features=None):
        ranked = self.ranked(p)
        joined = ranked[:, 0].astype(object)  # whole columns joined, not a Python join per customer
        for k in range(1, ranked.shape[1]):
            joined = joined + "," + ranked[:, k].astype(object)
        return {self.answer_field: ranked[:, 0], f"{self.noun}_ranking": joined}
