"""The complaint-credit scorecard as the group's 2009 specification builds it, needing no grade labels.

The specification (客户投诉信用分级管理应用, 2009-06-22, "信用度模型建立") builds the credit grade in
steps: 评估原则 → 指标筛选 (indicator screening) → 指标库构建 (indicator library) → 评价方法选择
(evaluation method) → 权重方法选择 (weighting method) → 权重确定 (weights determined) → 权重优化
(weights optimised) → 模型算法实现与调优 (model tuned) → 指标结果测试 (results tested with 漏判率 and
误判率). This module is that method, beside the supervised XGBoost model:

1. ``screen_indicators``: coverage, stability between periods (PSI), agreement with an outcome
   where one exists, redundancy; each step's reason recorded per indicator. The nine mandatory
   indicators (必选参数) are reported but never dropped.
2. ``Normaliser``: each indicator to [0, 1], higher = better credit (极差标准化 between the
   reference's percentiles, turned by ``credit_direction``); a category by its score table.
3. Weights: ``ahp_weights`` (expert pairwise judgements, Saaty's scale, refused when CR > 0.1),
   ``entropy_weights`` (熵权法), ``critic_weights`` (CRITIC), or ``combined_weights`` (expert and
   objective blended).
4. ``optimise_weights``: against whatever outcome exists, within bounds around the method's weights.
5. Cut-offs on the 0-100 score: given, from target grade shares, or optimised against true grades.
6. ``test_report``: quadratic kappa and the specification's ``missed_judgement_rate`` (漏判率) and
   ``misjudgement_rate`` (误判率).

Everything here is a pure function of its arguments (no I/O, no MLflow); ``fit_scorecard`` is the
entry, ``Scorecard`` the fitted object (``to_dict``/``from_dict`` is plain JSON).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from core import indicators as lib
from core.errors import ConfigurationError

#: Version of ``Scorecard.to_dict``'s layout.
FORMAT_VERSION = 1
#: The credit grades 1 (信用极差) .. 5 (信用极好).
GRADES = (1, 2, 3, 4, 5)
#: Saaty's random consistency index RI by matrix size n (Saaty 1980; 0 for n <= 2).
SAATY_RANDOM_INDEX = {
    1: 0.0,
    2: 0.0,
    3: 0.58,
    4: 0.90,
    5: 1.12,
    6: 1.24,
    7: 1.32,
    8: 1.41,
    9: 1.45,
    10: 1.49,
    11: 1.51,
    12: 1.48,
    13: 1.56,
    14: 1.57,
    15: 1.59,
}
#: Saaty's rule: judgements whose consistency ratio exceeds this are refused.
MAX_CONSISTENCY_RATIO = 0.1
#: The Saaty scale a judgement is rounded to when suggesting a consistent value.
SAATY_SCALE = tuple([1 / k for k in range(9, 1, -1)] + list(range(1, 10)))

#: Target share of customers per grade 1..5 when no cut-offs are given. Neither the specification
#: nor the domain brief states the group's distribution; this one keeps the average grade (信用一般)
#: the majority and the two extremes rare, close to what the generator's labels show (about 4%,
#: 17%, 47%, 19%, 12% in a Sichuan snapshot).
DEFAULT_GRADE_SHARES = (0.05, 0.15, 0.50, 0.20, 0.10)

#: Scores in [0, 1] (higher = better credit) of the codes of the three category indicators.
#: Customer category: the VIP tiers by their rank (钻卡 > 金卡 > 银卡), a group member above an
#: individual (the enterprise stands behind the line). Brand: GoTone (全球通) is the high-end
#: postpaid brand, M-Zone (动感地带) the youth brand, Easyown (神州行) the mass prepaid one. Payment:
#: a bank auto-debit pays on time by construction, postpaid cash builds a record of paid bills,
#: prepaid says least.
DEFAULT_CATEGORY_SCORES: dict[str, dict[str, float]] = {
    "customer_category": {
        "individual": 0.2,
        "group_member": 0.4,
        "vip_silver": 0.6,
        "vip_gold": 0.8,
        "vip_diamond": 1.0,
    },
    "brand": {"easyown": 0.2, "mzone": 0.4, "gotone": 1.0},
    "payment_method": {"prepaid": 0.3, "postpaid_cash": 0.6, "bank_debit": 1.0},
}
#: Rows the screening statistics (Spearman, PSI) are computed on at most: a sample of a large
#: province's tens of millions gives the same correlations to two decimals.
SCREENING_SAMPLE = 200_000


class InconsistentJudgements(ConfigurationError, ValueError):
    """Pairwise judgements whose consistency ratio exceeds 0.1 (a ValueError, so a province
    file's validation reports it at its line)."""


# -- configuration -------------------------------------------------------------------------------


def _mandatory_ids() -> list[str]:
    return [i.id for i in lib.credit_indicators("mandatory")]


def _credit_ids() -> list[str]:
    return [i.id for i in lib.credit_indicators()]


def _known(indicator_id: str) -> str:
    if indicator_id not in lib.BY_ID:
        close = difflib.get_close_matches(indicator_id, list(lib.BY_ID), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown indicator {indicator_id!r}{hint}; valid indicators: {', '.join(lib.BY_ID)}"
        )
    return indicator_id


def _judgement(value: Any) -> float:
    """A judgement as a number: 3, 0.333 or the string "1/3"."""
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"judgement {value!r} is not a number or a fraction like '1/3'") from None
    return value


IndicatorId = Annotated[str, AfterValidator(_known)]
Judgement = Annotated[float, BeforeValidator(_judgement)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AhpJudgements(_Strict):
    """Experts' pairwise comparisons (层次分析法): ``items`` are indicator ids, subjects of the
    library (``profile``, ``billing_payment``, ``complaints_service``, ``usage``) or names of
    ``groups``; ``judgements`` the upper triangle row by row, a12, a13, ..., a1n, a23, ..., so experts
    write n(n-1)/2 numbers on Saaty's scale: 1 equal, 3 moderately, 5 strongly, 7 very strongly,
    9 extremely more important (1/3 .. 1/9 the reverse).

    A group's (or subject's) weight is split among its indicators by ``within_group``."""

    items: list[str] = Field(min_length=2)
    judgements: list[Judgement]
    groups: dict[str, list[IndicatorId]] = Field(default_factory=dict)
    within_group: Literal["equal", "entropy", "critic"] = "equal"

    @model_validator(mode="after")
    def _valid(self) -> AhpJudgements:
        n = len(self.items)
        if len(set(self.items)) != n:
            raise ValueError(
                "AHP items listed more than once: "
                f"{sorted({i for i in self.items if self.items.count(i) > 1})}"
            )
        for name in self.groups:
            if name in lib.BY_ID or name in lib.SUBJECTS:
                raise ValueError(
                    f"AHP group {name!r} has the name of an indicator or subject; choose another"
                )
        for item in self.items:
            if item not in lib.BY_ID and item not in lib.SUBJECTS and item not in self.groups:
                close = difflib.get_close_matches(item, [*lib.BY_ID, *lib.SUBJECTS, *self.groups], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"AHP item {item!r}{hint} is neither an indicator, a subject ({', '.join(lib.SUBJECTS)}) "
                    "nor a name of 'groups'"
                )
        expected = n * (n - 1) // 2
        if len(self.judgements) != expected:
            raise ValueError(
                f"{n} AHP items need {expected} judgements (the upper triangle row by row: "
                f"{', '.join(_pair_names(self.items)[:4])}{', ...' if expected > 4 else ''}), "
                f"got {len(self.judgements)}"
            )
        for (a, b), v in zip(_pairs(self.items), self.judgements):
            if not (1 / 9 - 1e-3 <= v <= 9 + 1e-9):
                raise ValueError(f"judgement {a} vs {b} = {v:g} is outside Saaty's scale 1/9 .. 9")
        members = _item_members(self, _credit_ids())
        seen: dict[str, str] = {}
        for item, ids in members.items():
            for i in ids:
                if i in seen:
                    raise ValueError(f"indicator {i!r} is in two AHP items: {seen[i]!r} and {item!r}")
                seen[i] = item
        ahp_weights(self.matrix())  # refuses CR > 0.1 here, before any data is read
        return self

    def matrix(self) -> np.ndarray:
        """The full reciprocal comparison matrix from the upper triangle."""
        return comparison_matrix(len(self.items), self.judgements)


def _pairs(items: Sequence[str]) -> list[tuple[str, str]]:
    return [(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))]


def _pair_names(items: Sequence[str]) -> list[str]:
    return [f"{a} vs {b}" for a, b in _pairs(items)]


def _item_members(ahp: AhpJudgements, candidates: Sequence[str]) -> dict[str, list[str]]:
    """Each AHP item's indicators among ``candidates``: itself, its group's, or its subject's
    (a subject's minus indicators that are items or group members of their own)."""
    explicit = {i for i in ahp.items if i in lib.BY_ID} | {i for g in ahp.groups.values() for i in g}
    out = {}
    for item in ahp.items:
        if item in ahp.groups:
            out[item] = [i for i in ahp.groups[item] if i in candidates]
        elif item in lib.BY_ID:
            out[item] = [item] if item in candidates else []
        else:
            out[item] = [i for i in candidates if lib.BY_ID[i].subject == item and i not in explicit]
    return out


class ScreeningThresholds(_Strict):
    """The indicator screening's thresholds (指标筛选)."""

    #: Share of customers with a value below which an optional indicator is dropped.
    min_coverage: float = Field(0.8, ge=0, le=1)
    #: Population stability index between the earlier and the later period above which an optional
    #: indicator is dropped (0.25: the usual "significant shift").
    max_psi: float = Field(0.25, gt=0)
    #: Column of the frame naming the period (e.g. ``month``): PSI compares its first and last period.
    period_column: str | None = None
    #: |Spearman| with the outcome below which an optional indicator is dropped, when an outcome
    #: exists (an indicator that does not move with the evidence adds only noise to the score).
    min_outcome_correlation: float = Field(0.02, ge=0, le=1)
    drop_uncorrelated: bool = True
    #: |Spearman| between two indicators above which they say the same thing: the optional one
    #: (or the one with the weaker outcome correlation, else the lower coverage) is dropped.
    max_redundancy: float = Field(0.9, gt=0, le=1)


class WeightOptimisation(_Strict):
    """权重优化: how far the weights may move from the method's (each within ±``max_change`` of its
    prior, relative) when an outcome exists."""

    enabled: bool = True
    max_change: float = Field(0.5, ge=0, le=1)


def _category_table(indicator_id: str) -> str:
    _known(indicator_id)
    if lib.BY_ID[indicator_id].kind != "category":
        raise ValueError(f"category_scores: {indicator_id!r} is not a category indicator")
    return indicator_id


CategoryId = Annotated[str, AfterValidator(_category_table)]


class ScorecardConfig(_Strict):
    """How a province builds its credit scorecard: indicators, weighting method, expert judgements,
    category scores, directions the library leaves open, screening thresholds and grade cut-offs.
    Meant to be a section of a province file."""

    #: The credit indicators to score; default every library credit indicator the frame brings.
    indicators: list[IndicatorId] | None = None
    #: 权重方法: expert judgement (``ahp``), objective (``entropy``, ``critic``) or ``combined``.
    #: CRITIC by default: the entropy weight loads on rare values (a vanity number level most
    #: customers lack took half the weight on the generator's Sichuan snapshot, kappa 0.35 against
    #: its grades), CRITIC spreads weight by contrast and conflict (kappa 0.59 with no labels).
    method: Literal["ahp", "entropy", "critic", "combined"] = "critic"
    ahp: AhpJudgements | None = None
    #: For ``combined``: the objective method, the expert's share and how the two are blended
    #: (geometric: w ∝ w_ahp^share · w_obj^(1-share); arithmetic: share·w_ahp + (1-share)·w_obj).
    objective_method: Literal["entropy", "critic"] = "entropy"
    expert_share: float = Field(0.5, ge=0, le=1)
    combination: Literal["geometric", "arithmetic"] = "geometric"
    #: Per category indicator, a score in [0, 1] for each of its codes (replaces the default table).
    category_scores: dict[CategoryId, dict[str, float]] = Field(default_factory=dict)
    #: Direction (+1 better, -1 worse) of indicators whose library ``credit_direction`` is 0.
    directions: dict[IndicatorId, Literal[-1, 1]] = Field(default_factory=dict)
    #: Percentiles of the reference between which a number is range-standardised (clipped outside).
    clip_quantiles: tuple[float, float] = (0.01, 0.99)
    screening: ScreeningThresholds = Field(default_factory=ScreeningThresholds)
    optimisation: WeightOptimisation = Field(default_factory=WeightOptimisation)
    #: ``given``: ``cutoffs``; ``shares``: cut where ``grade_shares`` of the reference fall;
    #: ``outcome``: optimised for quadratic kappa against true grades (``shares`` without them).
    cutoff_method: Literal["given", "shares", "outcome"] = "shares"
    cutoffs: tuple[float, float, float, float] | None = None
    grade_shares: tuple[float, float, float, float, float] = DEFAULT_GRADE_SHARES

    @model_validator(mode="after")
    def _consistent(self) -> ScorecardConfig:
        if self.method in ("ahp", "combined") and self.ahp is None:
            raise ValueError(f"method {self.method!r} needs the experts' 'ahp' judgements")
        if self.indicators is not None:
            missing = [i for i in _mandatory_ids() if i not in self.indicators]
            if missing:
                raise ValueError(
                    "indicators must hold the nine mandatory credit indicators; "
                    f"missing: {', '.join(missing)}"
                )
        for ind_id, table in self.category_scores.items():
            codes = lib.BY_ID[ind_id].codes or ()
            unknown = [c for c in table if c not in codes]
            if unknown:
                raise ValueError(
                    f"category_scores.{ind_id}: unknown codes {unknown}; codes: {', '.join(codes)}"
                )
            absent = [c for c in codes if c not in table]
            if absent:
                raise ValueError(
                    f"category_scores.{ind_id}: give a score for every code; missing: {', '.join(absent)}"
                )
            outside = {c: v for c, v in table.items() if not 0 <= v <= 1}
            if outside:
                raise ValueError(f"category_scores.{ind_id}: scores must be between 0 and 1, got {outside}")
        for ind_id, d in self.directions.items():
            known = lib.BY_ID[ind_id].credit_direction
            if known and known != d:
                raise ValueError(
                    f"directions: the library says {ind_id!r} has credit_direction {known:+d}; "
                    f"the file says {d:+d} (set only the directions the library leaves open)"
                )
        low, high = self.clip_quantiles
        if not 0 <= low < high <= 1:
            raise ValueError(
                f"clip_quantiles must be two percentiles 0 <= low < high <= 1, got {[low, high]}"
            )
        if self.cutoffs is not None and not (
            0 < self.cutoffs[0] < self.cutoffs[1] < self.cutoffs[2] < self.cutoffs[3] < 100
        ):
            raise ValueError(
                f"cutoffs must be four increasing scores between 0 and 100, got {list(self.cutoffs)}"
            )
        if self.cutoff_method == "given" and self.cutoffs is None:
            raise ValueError("cutoff_method 'given' needs the four 'cutoffs'")
        if any(s <= 0 for s in self.grade_shares) or abs(sum(self.grade_shares) - 1) > 1e-6:
            raise ValueError(
                f"grade_shares must be five positive shares summing to 1, got {list(self.grade_shares)}"
            )
        return self

    def category_table(self, indicator_id: str) -> dict[str, float]:
        return self.category_scores.get(indicator_id) or DEFAULT_CATEGORY_SCORES[indicator_id]


# -- weighting methods -----------------------------------------------------------------------------


def comparison_matrix(n: int, upper: Sequence[float]) -> np.ndarray:
    """The reciprocal n×n matrix (a_ii = 1, a_ji = 1/a_ij) from the upper triangle row by row."""
    a = np.ones((n, n))
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            a[i, j], a[j, i] = float(upper[k]), 1.0 / float(upper[k])
            k += 1
    return a


@dataclass(frozen=True)
class AhpResult:
    weights: np.ndarray
    lambda_max: float
    consistency_index: float
    random_index: float
    consistency_ratio: float

    def to_dict(self) -> dict:
        return {
            "weights": [float(w) for w in self.weights],
            "lambda_max": self.lambda_max,
            "consistency_index": self.consistency_index,
            "random_index": self.random_index,
            "consistency_ratio": self.consistency_ratio,
        }


def ahp_weights(matrix: np.ndarray, names: Sequence[str] | None = None) -> AhpResult:
    """Weights of an AHP pairwise comparison matrix by its principal eigenvector (Saaty's method;
    for n = 3 it equals the rows' geometric means), with the consistency check.

    CI = (λmax − n)/(n − 1), CR = CI/RI with Saaty's random index RI. Judgements with CR > 0.1 are
    refused (``InconsistentJudgements``), naming the CR and the judgement furthest from what the
    weights imply, with the value that would be consistent.
    """
    a = np.asarray(matrix, dtype=float)
    n = a.shape[0]
    if a.shape != (n, n) or n < 1:
        raise ValueError(f"an AHP matrix must be square, got shape {a.shape}")
    if not np.allclose(a * a.T, 1.0, rtol=1e-6):
        raise ValueError("an AHP matrix must be reciprocal: a_ji = 1/a_ij")
    if n == 1:
        return AhpResult(np.ones(1), 1.0, 0.0, 0.0, 0.0)
    values, vectors = np.linalg.eig(a)
    k = int(np.argmax(values.real))
    w = np.abs(vectors[:, k].real)
    w = w / w.sum()
    lam = float(values[k].real)
    ci = max(0.0, (lam - n) / (n - 1))
    ri = SAATY_RANDOM_INDEX.get(n, 1.59)
    cr = ci / ri if ri > 0 else 0.0
    result = AhpResult(w, lam, ci, ri, cr)
    if cr > MAX_CONSISTENCY_RATIO:
        names = list(names) if names is not None else [f"item {i + 1}" for i in range(n)]
        implied = w[:, None] / w[None, :]
        deviation = np.abs(np.log(a / implied))
        i, j = np.unravel_index(np.argmax(np.triu(deviation, 1)), a.shape)
        suggestion = min(SAATY_SCALE, key=lambda s: abs(math.log(s / implied[i, j])))
        raise InconsistentJudgements(
            f"the AHP judgements are inconsistent: consistency ratio CR = {cr:.3f} > {MAX_CONSISTENCY_RATIO} "
            f"(λmax = {lam:.3f}, CI = {ci:.3f}, RI = {ri}); the most inconsistent judgement is "
            f"{names[i]} vs {names[j]} = {_saaty(a[i, j])}, the others imply about {_saaty(suggestion)}"
        )
    return result


def _saaty(v: float) -> str:
    return f"{v:g}" if v >= 1 else f"1/{1 / v:g}"


def entropy_weights(normalised: np.ndarray) -> np.ndarray:
    """熵权法: w_j ∝ 1 − e_j, e_j = −Σ_i p_ij ln p_ij / ln m with p_ij = x_ij / Σ_i x_ij (0·ln 0 = 0).

    An indicator on which customers differ more (lower entropy) carries more information and weighs
    more; a constant one weighs nothing. ``normalised``: m customers × n indicators in [0, 1]."""
    x = np.asarray(normalised, dtype=float)
    m = x.shape[0]
    if m < 2:
        raise ValueError("the entropy weight needs at least two customers")
    totals = x.sum(axis=0)
    p = np.divide(x, totals, out=np.full_like(x, 1.0 / m), where=totals > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    e = -plogp.sum(axis=0) / np.log(m)
    d = np.clip(1.0 - e, 0.0, None)
    return _normalised_weights(d, "entropy")


def critic_weights(normalised: np.ndarray) -> np.ndarray:
    """CRITIC (Diakoulaki et al. 1995): w_j ∝ σ_j · Σ_k (1 − r_jk), the indicator's contrast (its
    standard deviation) times its conflict with the others (Pearson correlations). Two indicators
    saying the same thing share the weight one of them would have; a constant one weighs nothing."""
    x = np.asarray(normalised, dtype=float)
    sigma = x.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.corrcoef(x, rowvar=False) if x.shape[1] > 1 else np.ones((1, 1))
    r = np.nan_to_num(np.atleast_2d(r), nan=0.0)
    np.fill_diagonal(r, 1.0)
    return _normalised_weights(sigma * (1.0 - r).sum(axis=0), "CRITIC")


def combined_weights(
    expert: np.ndarray, objective: np.ndarray, expert_share: float = 0.5, how: str = "geometric"
) -> np.ndarray:
    """Expert and objective weights blended (主客观组合赋权): geometric w ∝ e^s·o^(1−s) (an indicator
    either side finds worthless stays near zero), or arithmetic w = s·e + (1−s)·o."""
    e, o = np.asarray(expert, float), np.asarray(objective, float)
    w = (
        e**expert_share * o ** (1 - expert_share)
        if how == "geometric"
        else expert_share * e + (1 - expert_share) * o
    )
    return _normalised_weights(w, f"{how} combination")


def _normalised_weights(raw: np.ndarray, method: str) -> np.ndarray:
    raw = np.asarray(raw, dtype=float)
    total = raw.sum()
    if not np.isfinite(total) or total <= 0:
        raise ConfigurationError(
            f"the {method} weights are all zero: the indicators do not vary among these customers"
        )
    return raw / total


# -- normalisation --------------------------------------------------------------------------------


@dataclass
class Normaliser:
    """One indicator to [0, 1], higher = better credit.

    A number: (value − low)/(high − low) clipped to [0, 1], low and high the reference's
    percentiles (``clip_quantiles``), reversed when the direction is −1. A category: its code's
    score. Missing or unknown: ``fill``, the reference's median normalised value (the typical
    customer: a missing value neither raises nor lowers the credit)."""

    id: str
    direction: int
    low: float = 0.0
    high: float = 1.0
    scores: dict[str, float] | None = None
    fill: float = 0.5

    def __call__(self, values) -> np.ndarray:
        x = self.raw(values)
        return np.where(np.isnan(x), self.fill, x)

    def raw(self, values) -> np.ndarray:
        """Normalised values with NaN where missing."""
        if self.scores is not None:
            s = pd.Series(np.asarray(values, dtype=object)).map(self.scores)
            return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        v = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        span = self.high - self.low
        x = np.clip((v - self.low) / span, 0.0, 1.0) if span > 0 else np.where(np.isnan(v), np.nan, 0.5)
        return 1.0 - x if self.direction < 0 else x

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "direction": self.direction,
            "low": self.low,
            "high": self.high,
            "scores": self.scores,
            "fill": self.fill,
        }


def numeric_view(values: pd.Series, indicator_id: str, config: ScorecardConfig) -> np.ndarray:
    """An indicator as numbers for screening: a category by its score table, NaN where missing."""
    if lib.BY_ID[indicator_id].kind == "category":
        table = config.category_table(indicator_id)
        return pd.to_numeric(values.map(table), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def credit_direction(
    indicator_id: str, config: ScorecardConfig, outcome_correlation: float | None = None
) -> tuple[int, str]:
    """The direction (+1 higher is better credit, −1 worse) of an indicator, and where it came
    from: the library's ``credit_direction``, else the sign of its Spearman correlation with the
    outcome (oriented so that higher is better), else the configuration's ``directions``; refused
    when none says."""
    ind = lib.BY_ID[indicator_id]
    if ind.kind == "category":
        return 1, "category score table"
    if ind.credit_direction:
        return ind.credit_direction, "library credit_direction"
    if outcome_correlation is not None and np.isfinite(outcome_correlation) and outcome_correlation != 0:
        return (1 if outcome_correlation > 0 else -1), f"outcome correlation {outcome_correlation:+.3f}"
    if indicator_id in config.directions:
        return config.directions[indicator_id], "configuration directions"
    raise ConfigurationError(
        f"the direction of {indicator_id!r} ({ind.name_zh}, {ind.name_en}) on credit is unknown: "
        "the library's credit_direction is 0 and no outcome says; set it in the scorecard configuration, "
        f"e.g. directions: {{{indicator_id}: 1}} (higher is better credit) or -1 (worse), "
        "or leave it out of 'indicators'"
    )


def fit_normaliser(
    values: pd.Series, indicator_id: str, config: ScorecardConfig, direction: int
) -> Normaliser:
    """The normaliser of one indicator fitted on the reference customers."""
    if lib.BY_ID[indicator_id].kind == "category":
        norm = Normaliser(indicator_id, 1, scores=dict(config.category_table(indicator_id)))
    else:
        v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
        if len(v) == 0:
            low = high = 0.0
        else:
            low, high = (float(q) for q in np.quantile(v, config.clip_quantiles))
            if high <= low:  # most customers at one value (no arrears): the full range
                low, high = float(v.min()), float(v.max())
        norm = Normaliser(indicator_id, direction, low, high)
    observed = norm.raw(values)
    observed = observed[~np.isnan(observed)]
    norm.fill = float(np.median(observed)) if len(observed) else 0.5
    return norm


# -- screening ------------------------------------------------------------------------------------


def population_stability_index(expected, actual, bins: int = 10) -> float:
    """PSI = Σ (a − e)·ln(a/e) over the earlier period's deciles (a category: its codes), missing
    values a bin of their own, shares floored at 1e-4."""
    e = pd.Series(expected)
    a = pd.Series(actual)
    numeric = pd.api.types.is_numeric_dtype(e) and pd.api.types.is_numeric_dtype(a)
    if numeric:
        ev, av = e.to_numpy(dtype=float, na_value=np.nan), a.to_numpy(dtype=float, na_value=np.nan)
        edges = (
            np.unique(np.nanquantile(ev, np.linspace(0, 1, bins + 1)[1:-1])) if np.isfinite(ev).any() else []
        )
        eb = np.where(np.isnan(ev), -1, np.searchsorted(edges, ev, side="right"))
        ab = np.where(np.isnan(av), -1, np.searchsorted(edges, av, side="right"))
    else:
        eb, ab = (
            e.astype(object).fillna("<missing>").to_numpy(),
            a.astype(object).fillna("<missing>").to_numpy(),
        )
    keys = pd.Index(np.unique(np.concatenate([np.asarray(eb, dtype=str), np.asarray(ab, dtype=str)])))
    es = (
        pd.Series(np.asarray(eb, dtype=str))
        .value_counts(normalize=True)
        .reindex(keys, fill_value=0)
        .to_numpy()
    )
    as_ = (
        pd.Series(np.asarray(ab, dtype=str))
        .value_counts(normalize=True)
        .reindex(keys, fill_value=0)
        .to_numpy()
    )
    es, as_ = np.clip(es, 1e-4, None), np.clip(as_, 1e-4, None)
    return float(((as_ - es) * np.log(as_ / es)).sum())


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3:
        return float("nan")
    xr, yr = pd.Series(x[ok]).rank().to_numpy(), pd.Series(y[ok]).rank().to_numpy()
    if xr.std() == 0 or yr.std() == 0:
        return float("nan")
    return float(np.corrcoef(xr, yr)[0, 1])


def _sample(frame: pd.DataFrame, *others: pd.Series | None) -> tuple:
    if len(frame) <= SCREENING_SAMPLE:
        return (frame, *others)
    rows = np.sort(np.random.default_rng(0).choice(len(frame), SCREENING_SAMPLE, replace=False))
    return (frame.iloc[rows], *(o.iloc[rows] if o is not None else None for o in others))


def screen_indicators(
    frame: pd.DataFrame,
    indicator_ids: Sequence[str],
    config: ScorecardConfig,
    goodness: pd.Series | None = None,
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """指标筛选: one row per indicator, with what each step found and whether it is kept.

    Steps, in order, each on the indicators the steps before kept: coverage (share with a value
    below ``min_coverage``); stability (PSI between ``previous`` and ``frame`` above ``max_psi``;
    skipped without an earlier period); outcome (|Spearman| with ``goodness`` below
    ``min_outcome_correlation``; skipped without an outcome); redundancy (pairs above
    ``max_redundancy``: the mandatory one, else the one with the stronger outcome correlation, else
    the better coverage, else the library's first is kept). A mandatory indicator fails a step only
    in the report: the specification makes the nine mandatory (必选参数), so they are always kept.
    """
    t = config.screening
    frame, goodness = _sample(frame, goodness)
    rows = {}
    views = {i: numeric_view(frame[i], i, config) for i in indicator_ids}
    for i in indicator_ids:
        ind = lib.BY_ID[i]
        rows[i] = {
            "indicator": i,
            "name_zh": ind.name_zh,
            "role": ind.credit_role or "other",
            "coverage": float(frame[i].notna().mean()) if len(frame) else float("nan"),
            "psi": float("nan"),
            "outcome_spearman": float("nan"),
            "redundant_with": "",
            "kept": True,
            "dropped_at": "",
            "reasons": [],
        }

    def fail(i: str, step: str, reason: str) -> None:
        row = rows[i]
        if row["role"] == "mandatory":
            row["reasons"].append(f"{reason}; kept: mandatory (必选参数)")
        else:
            row["reasons"].append(f"{reason}; dropped")
            row["kept"], row["dropped_at"] = False, step

    def kept() -> list[str]:
        return [i for i in indicator_ids if rows[i]["kept"]]

    for i in kept():
        c = rows[i]["coverage"]
        distinct = pd.Series(views[i]).nunique()
        if c < t.min_coverage:
            fail(i, "coverage", f"coverage {c:.1%} < {t.min_coverage:.0%}")
        elif distinct < 2:
            fail(i, "coverage", "no variation: every customer has the same value")
        else:
            rows[i]["reasons"].append(f"coverage {c:.1%} >= {t.min_coverage:.0%}")

    if previous is None and t.period_column and t.period_column in frame:
        periods = sorted(frame[t.period_column].dropna().unique())
        if len(periods) >= 2:
            previous = frame[frame[t.period_column] == periods[0]]
            frame_now = frame[frame[t.period_column] == periods[-1]]
        else:
            frame_now = frame
    else:
        frame_now = frame
    for i in kept():
        if previous is None or i not in previous:
            rows[i]["reasons"].append("stability: skipped (no earlier period)")
            continue
        psi = population_stability_index(previous[i], frame_now[i])
        rows[i]["psi"] = psi
        if psi > t.max_psi:
            fail(i, "stability", f"unstable: PSI {psi:.3f} > {t.max_psi}")
        else:
            rows[i]["reasons"].append(f"stable: PSI {psi:.3f} <= {t.max_psi}")

    g = goodness.to_numpy(dtype=float, na_value=np.nan) if goodness is not None else None
    for i in kept():
        if g is None:
            rows[i]["reasons"].append("outcome: skipped (no outcome)")
            continue
        rho = _spearman(views[i], g)
        rows[i]["outcome_spearman"] = rho
        direction = lib.BY_ID[i].credit_direction
        if (
            direction
            and np.isfinite(rho)
            and np.sign(rho) == -direction
            and abs(rho) >= t.min_outcome_correlation
        ):
            rows[i]["reasons"].append(
                f"note: outcome correlation {rho:+.3f} contradicts credit_direction {direction:+d}"
            )
        weak = not np.isfinite(rho) or abs(rho) < t.min_outcome_correlation
        if weak and t.drop_uncorrelated:
            fail(
                i,
                "outcome",
                f"outcome |Spearman| {abs(rho) if np.isfinite(rho) else 0:.3f} < {t.min_outcome_correlation}",
            )
        else:
            rows[i]["reasons"].append(f"outcome Spearman {rho:+.3f}")

    candidates = kept()
    pairs = []
    for a_k, a in enumerate(candidates):
        for b in candidates[a_k + 1 :]:
            rho = _spearman(views[a], views[b])
            if np.isfinite(rho) and abs(rho) > t.max_redundancy:
                pairs.append((abs(rho), a, b))
    for rho, a, b in sorted(pairs, reverse=True):
        if not (rows[a]["kept"] and rows[b]["kept"]):
            continue
        winner, loser, why = _redundancy_winner(rows[a], rows[b])
        rows[loser]["redundant_with"] = winner
        rows[winner]["redundant_with"] = rows[winner]["redundant_with"] or loser
        fail(
            loser, "redundancy", f"redundant with {winner} (|Spearman| {rho:.3f} > {t.max_redundancy}; {why})"
        )
    out = pd.DataFrame(list(rows.values())).set_index("indicator")
    out["reasons"] = out["reasons"].map("; ".join)
    return out


def _redundancy_winner(a: dict, b: dict) -> tuple[str, str, str]:
    if (a["role"] == "mandatory") != (b["role"] == "mandatory"):
        w, loser = (a, b) if a["role"] == "mandatory" else (b, a)
        return w["indicator"], loser["indicator"], f"{w['indicator']} is mandatory"
    ra, rb = abs(a["outcome_spearman"]), abs(b["outcome_spearman"])
    if np.isfinite(ra) and np.isfinite(rb) and ra != rb:
        w, loser = (a, b) if ra > rb else (b, a)
        return w["indicator"], loser["indicator"], "kept the stronger outcome correlation"
    if a["coverage"] != b["coverage"]:
        w, loser = (a, b) if a["coverage"] > b["coverage"] else (b, a)
        return w["indicator"], loser["indicator"], "kept the better coverage"
    return a["indicator"], b["indicator"], "kept the library's first"


# -- weight optimisation ------------------------------------------------------------------------


def _ranks(y: np.ndarray) -> np.ndarray:
    return pd.Series(y).rank().to_numpy(dtype=float)


def agreement(score: np.ndarray, goodness: np.ndarray) -> dict[str, float]:
    """How well a score agrees with the outcome (higher = better credit): Spearman, and AUC when
    the outcome has two values (the AUC of the score for the better one)."""
    out = {"spearman": _spearman(np.asarray(score, float), np.asarray(goodness, float))}
    values = np.unique(goodness[~np.isnan(goodness)])
    if len(values) == 2:
        from sklearn.metrics import roc_auc_score

        ok = ~np.isnan(goodness)
        out["auc"] = float(roc_auc_score(goodness[ok] == values[1], score[ok]))
    return out


def optimise_weights(
    normalised: np.ndarray, goodness: np.ndarray, prior: np.ndarray, max_change: float = 0.5
) -> tuple[np.ndarray, dict]:
    """权重优化: the weights, each within ±``max_change`` of its prior (relative) and summing to 1,
    that maximise the correlation of the score with the outcome's ranks (a smooth stand-in for
    Spearman, and for AUC when the outcome is binary), by SLSQP. Kept at the prior when the
    Spearman on these customers does not improve. Returns the weights and a record of before/after.
    """
    from scipy.optimize import minimize

    z = np.asarray(normalised, float)
    g = np.asarray(goodness, float)
    ok = ~np.isnan(g)
    z, g = z[ok], g[ok]
    prior = np.asarray(prior, float)
    t = _ranks(g)
    t = t - t.mean()
    zc = z - z.mean(axis=0)
    cov = zc.T @ zc / len(z)
    c = zc.T @ t / len(z)

    def negative_correlation(w):
        var = float(w @ cov @ w)
        if var <= 1e-18:
            return 0.0, np.zeros_like(w)
        s = math.sqrt(var)
        value = float(w @ c) / s
        grad = c / s - float(w @ c) * (cov @ w) / s**3
        return -value, -grad

    bounds = [(max(0.0, p * (1 - max_change)), p * (1 + max_change)) for p in prior]
    result = minimize(
        negative_correlation,
        prior,
        jac=True,
        method="SLSQP",
        bounds=bounds,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"maxiter": 200, "ftol": 1e-10},
    )
    w = np.clip(result.x, [b[0] for b in bounds], [b[1] for b in bounds])
    w = w / w.sum()
    before, after = agreement(z @ prior, g), agreement(z @ w, g)
    improved = bool(np.isfinite(after["spearman"]) and after["spearman"] > before["spearman"])
    record = {
        "status": "optimised" if improved else "kept prior (no improvement)",
        "max_change": max_change,
        "customers": int(len(g)),
        "before": before,
        "after": after if improved else before,
        "solver": str(result.message),
    }
    return (w if improved else prior.copy()), record


# -- grades and cut-offs --------------------------------------------------------------------------


def grades_of(score: np.ndarray, cutoffs: Sequence[float]) -> np.ndarray:
    """Grade 1..5 of each score: 1 + the number of cut-offs it reaches."""
    return 1 + (np.asarray(score, float)[:, None] >= np.asarray(cutoffs, float)[None, :]).sum(axis=1)


def cutoffs_from_shares(score: np.ndarray, shares: Sequence[float]) -> list[float]:
    """The cut-offs that put ``shares`` of these scores in grades 1..5 (worst first)."""
    cumulative = np.cumsum(shares)[:-1]
    return [float(q) for q in np.quantile(np.asarray(score, float), cumulative)]


def quadratic_kappa(confusion: np.ndarray) -> float:
    """Cohen's kappa with quadratic weights from a true × graded count table."""
    o = np.asarray(confusion, float)
    k = o.shape[0]
    n = o.sum()
    if n == 0:
        return float("nan")
    i, j = np.indices((k, k))
    w = (i - j) ** 2 / (k - 1) ** 2
    e = np.outer(o.sum(axis=1), o.sum(axis=0)) / n
    denominator = (w * e).sum()
    return float(1 - (w * o).sum() / denominator) if denominator > 0 else float("nan")


def confusion_table(true: np.ndarray, graded: np.ndarray) -> np.ndarray:
    """Counts of true grade (rows 1..5) × graded (columns 1..5)."""
    t, g = np.asarray(true, int), np.asarray(graded, int)
    table = np.zeros((5, 5), dtype=int)
    np.add.at(table, (t - 1, g - 1), 1)
    return table


def cutoffs_for_kappa(score: np.ndarray, true: np.ndarray, passes: int = 3, bins: int = 200) -> list[float]:
    """Cut-offs maximising quadratic kappa against true grades: start where the true grades' shares
    fall, then move one cut-off at a time over the score's ``bins`` quantiles."""
    s, t = np.asarray(score, float), np.asarray(true, int)
    shares = np.bincount(t, minlength=6)[1:6] / len(t)
    shares = np.clip(shares, 1e-3, None)
    start = cutoffs_from_shares(s, shares / shares.sum())
    edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)[1:-1]))
    cell = np.searchsorted(edges, s, side="right")  # score cell 0..len(edges)
    counts = np.zeros((len(edges) + 1, 5))
    np.add.at(counts, (cell, t - 1), 1)
    # a cut-off at edges[k] grades cells > k up: search cut-off positions as edge indices
    position = [int(np.clip(np.searchsorted(edges, c), 0, len(edges) - 1)) for c in start]
    for k in range(1, 4):  # strictly increasing where the score's cells allow
        position[k] = min(max(position[k], position[k - 1] + 1), len(edges) - 1)

    def kappa(pos: list[int]) -> float:
        grade_of_cell = np.searchsorted(np.asarray(pos), np.arange(len(edges) + 1), side="left")
        table = np.zeros((5, 5))
        for g in range(5):
            table[:, g] = counts[grade_of_cell == g].sum(axis=0)
        return quadratic_kappa(table)

    best = kappa(position)
    for _ in range(passes):
        moved = False
        for k in range(4):
            low = position[k - 1] + 1 if k > 0 else 0
            high = position[k + 1] - 1 if k < 3 else len(edges) - 1
            for candidate in range(low, high + 1):
                trial = position.copy()
                trial[k] = candidate
                value = kappa(trial)
                if value > best + 1e-12:
                    best, position, moved = value, trial, True
        if not moved:
            break
    return [float(edges[p]) for p in position]


# -- the test: the specification's two error rates ----------------------------------------------


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
    low is a worse error the specification does not name; ``test_report`` counts it apart
    (``good_graded_low_rate``). NaN when no customer is of average credit.
    """
    t, g = np.asarray(true, int), np.asarray(graded, int)
    normal = t == 3
    return float((g[normal] <= 2).mean()) if normal.any() else float("nan")


def test_report(true, graded) -> dict:
    """指标结果测试: quadratic kappa, the specification's 漏判率 and 误判率, the rate of truly good or
    excellent customers graded low, the rate the supervised model calls misjudgement (true 3-5
    graded 1-2, for comparison), exact agreement and the true × graded table."""
    t, g = np.asarray(true, int), np.asarray(graded, int)
    good = t >= 4
    broad = t >= 3
    table = confusion_table(t, g)
    return {
        "customers": int(len(t)),
        "quadratic_weighted_kappa": quadratic_kappa(table),
        "missed_judgement_rate": missed_judgement_rate(t, g),
        "misjudgement_rate": misjudgement_rate(t, g),
        "good_graded_low_rate": float((g[good] <= 2).mean()) if good.any() else float("nan"),
        "average_or_better_graded_low_rate": float((g[broad] <= 2).mean()) if broad.any() else float("nan"),
        "exact_accuracy": float((t == g).mean()) if len(t) else float("nan"),
        "confusion": table.tolist(),
    }


test_report.__test__ = False  # a business report, not a pytest test


def event_report(bad_event, score, graded) -> dict:
    """The test against a binary bad-credit event: the score's AUC for avoiding the event, and the
    event rate per grade (it should fall from grade 1 to 5)."""
    e = np.asarray(bad_event, float)
    ok = ~np.isnan(e)
    e, s, g = e[ok], np.asarray(score, float)[ok], np.asarray(graded, int)[ok]
    out: dict[str, Any] = {
        "customers": int(len(e)),
        "event_rate": float(e.mean()) if len(e) else float("nan"),
    }
    if len(np.unique(e)) == 2:
        from sklearn.metrics import roc_auc_score

        out["auc"] = float(roc_auc_score(e == 0, s))
    out["event_rate_by_grade"] = {
        str(k): (float(e[g == k].mean()) if (g == k).any() else None) for k in GRADES
    }
    return out


# -- the scorecard ---------------------------------------------------------------------------------


@dataclass
class Scorecard:
    """A fitted credit scorecard: score = 100 · Σ w_j · x_j (x_j the normalised indicator, Σ w_j = 1),
    grade = 1 + the cut-offs the score reaches."""

    normalisers: dict[str, Normaliser]
    weights: dict[str, float]
    cutoffs: list[float]
    screening: pd.DataFrame
    method: str = "critic"
    prior_weights: dict[str, float] = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    @property
    def indicators(self) -> list[str]:
        return list(self.weights)

    def normalised(self, frame: pd.DataFrame) -> np.ndarray:
        """Customers × indicators in [0, 1], higher = better credit."""
        missing = [i for i in self.weights if i not in frame]
        if missing:
            raise ConfigurationError(
                f"the scorecard needs the indicators {', '.join(missing)}; the frame lacks them"
            )
        return np.column_stack([self.normalisers[i](frame[i].to_numpy()) for i in self.weights])

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """The credit score 0-100 of each customer (higher = better credit)."""
        return 100.0 * self.normalised(frame) @ np.array(list(self.weights.values()))

    def grade(self, frame: pd.DataFrame) -> np.ndarray:
        """The credit grade 1 (信用极差) .. 5 (信用极好) of each customer."""
        return grades_of(self.score(frame), self.cutoffs)

    def reasons(self, frame: pd.DataFrame, top: int = 3) -> list[list[dict]]:
        """Per customer, the indicators that pulled the score down most: weight × shortfall from the
        best value, in score points (100 · w_j · (1 − x_j)), largest first, zero shortfalls left out."""
        w = np.array(list(self.weights.values()))
        lost = 100.0 * (1.0 - self.normalised(frame)) * w[None, :]
        order = np.argsort(-lost, axis=1)[:, :top]
        ids = self.indicators
        out = []
        for row, idx in zip(lost, order):
            out.append(
                [
                    {
                        "indicator": ids[k],
                        "name_zh": lib.BY_ID[ids[k]].name_zh,
                        "name_en": lib.BY_ID[ids[k]].name_en,
                        "points_lost": round(float(row[k]), 2),
                    }
                    for k in idx
                    if row[k] > 0
                ]
            )
        return out

    def to_dict(self) -> dict:
        """Plain JSON (no NaN): enough to score, grade and explain, and the fitting record."""
        return _json_safe(
            {
                "format": FORMAT_VERSION,
                "method": self.method,
                "weights": self.weights,
                "prior_weights": self.prior_weights,
                "cutoffs": self.cutoffs,
                "normalisers": [self.normalisers[i].to_dict() for i in self.weights],
                "screening": self.screening.reset_index().to_dict(orient="records"),
                "details": self.details,
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> Scorecard:
        if data.get("format") != FORMAT_VERSION:
            raise ConfigurationError(f"scorecard format {data.get('format')!r} is not {FORMAT_VERSION}")
        normalisers = {n["id"]: Normaliser(**n) for n in data["normalisers"]}
        screening = pd.DataFrame(data["screening"])
        if "indicator" in screening:
            screening = screening.set_index("indicator")
        return cls(
            normalisers=normalisers,
            weights={k: float(v) for k, v in data["weights"].items()},
            cutoffs=[float(c) for c in data["cutoffs"]],
            screening=screening,
            method=data["method"],
            prior_weights={k: float(v) for k, v in data.get("prior_weights", {}).items()},
            details=data.get("details", {}),
        )


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _goodness(outcome: pd.Series | None, outcome_kind: str, index: pd.Index) -> pd.Series | None:
    """The outcome oriented so that higher = better credit."""
    if outcome is None:
        return None
    y = pd.to_numeric(pd.Series(np.asarray(outcome), index=index), errors="coerce")
    if outcome_kind == "bad_event":
        return -y
    return y


def fit_scorecard(
    indicators: pd.DataFrame,
    config: ScorecardConfig | None = None,
    outcome: pd.Series | None = None,
    *,
    outcome_kind: Literal["grade", "bad_event"] = "grade",
    previous: pd.DataFrame | None = None,
) -> Scorecard:
    """The specification's credit model fitted on a frame of customers' indicators (one row each).

    ``outcome`` is optional evidence: ``grade`` — an ordinal outcome, higher = better credit (true
    grades 1..5, from a review of handled complaints); ``bad_event`` — 1 when a bad credit event
    followed (an unpaid bill, a refund found undue), 0 otherwise. Without it the weights are the
    method's (optimisation recorded as skipped) and the cut-offs come from the configuration.
    ``previous``: the same indicators of an earlier period, for the stability screening.
    """
    config = config or ScorecardConfig()
    frame = indicators.reset_index(drop=True)
    if outcome is not None:
        if len(outcome) != len(frame):
            raise ConfigurationError(f"the outcome has {len(outcome)} values for {len(frame)} customers")
        outcome = pd.Series(np.asarray(outcome), index=frame.index)
    if outcome_kind not in ("grade", "bad_event"):
        raise ConfigurationError(f"outcome_kind must be 'grade' or 'bad_event', got {outcome_kind!r}")
    ids = (
        list(config.indicators) if config.indicators is not None else [i for i in _credit_ids() if i in frame]
    )
    missing = [i for i in _mandatory_ids() if i not in frame]
    if missing:
        raise ConfigurationError(
            "the credit scorecard needs the nine mandatory indicators (必选参数); "
            f"the frame lacks: {', '.join(missing)}"
        )
    absent = [i for i in ids if i not in frame]
    if absent:
        raise ConfigurationError(f"the configuration lists indicators the frame lacks: {', '.join(absent)}")
    goodness = _goodness(outcome, outcome_kind, frame.index)

    # 1. screening
    screening = screen_indicators(frame, ids, config, goodness, previous)
    kept = [i for i in ids if screening.loc[i, "kept"]]

    # 2. normalisation, directions from the library, the outcome or the configuration
    normalisers, direction_source = {}, {}
    for i in kept:
        rho = screening.loc[i, "outcome_spearman"] if goodness is not None else None
        d, source = credit_direction(i, config, rho)
        normalisers[i] = fit_normaliser(frame[i], i, config, d)
        direction_source[i] = f"{d:+d} ({source})"
    screening["direction"] = pd.Series(direction_source)
    z = np.column_stack([normalisers[i](frame[i].to_numpy()) for i in kept])

    # 3. weights by the configured method
    prior, weighting = _method_weights(z, kept, config)
    details: dict[str, Any] = {"weighting": weighting, "directions": direction_source}

    # 4. optimisation against the outcome
    if goodness is None:
        w = prior
        details["optimisation"] = {"status": "skipped (no outcome)"}
    elif not config.optimisation.enabled:
        w = prior
        details["optimisation"] = {"status": "skipped (disabled in the configuration)"}
    else:
        w, details["optimisation"] = optimise_weights(
            z, goodness.to_numpy(dtype=float, na_value=np.nan), prior, config.optimisation.max_change
        )
    score = 100.0 * z @ w

    # 5. cut-offs
    true_grades = None
    if goodness is not None and outcome_kind == "grade":
        y = goodness.to_numpy(dtype=float, na_value=np.nan)
        if np.isin(y[~np.isnan(y)], GRADES).all() and (~np.isnan(y)).any():
            true_grades = y
    if config.cutoff_method == "given":
        cutoffs, how = list(config.cutoffs), "given in the configuration"
    elif config.cutoff_method == "outcome" and true_grades is not None:
        ok = ~np.isnan(true_grades)
        cutoffs, how = (
            cutoffs_for_kappa(score[ok], true_grades[ok].astype(int)),
            "optimised for quadratic kappa",
        )
    else:
        cutoffs = cutoffs_from_shares(score, config.grade_shares)
        how = f"target grade shares {list(config.grade_shares)}"
        if config.cutoff_method == "outcome":
            how += " (no true grades to optimise against)"
    details["cutoffs"] = how

    card = Scorecard(
        normalisers=normalisers,
        weights={i: float(v) for i, v in zip(kept, w)},
        cutoffs=cutoffs,
        screening=screening,
        method=config.method,
        prior_weights={i: float(v) for i, v in zip(kept, prior)},
        details=details,
    )

    # 6. the test, on the fitting customers
    if true_grades is not None:
        ok = ~np.isnan(true_grades)
        details["test"] = test_report(true_grades[ok].astype(int), grades_of(score[ok], cutoffs))
    elif goodness is not None and outcome_kind == "bad_event":
        details["test"] = event_report(
            outcome.to_numpy(dtype=float, na_value=np.nan), score, grades_of(score, cutoffs)
        )
    else:
        details["test"] = {"status": "skipped (no outcome)"}
    details["config"] = config.model_dump(mode="json")
    return card


def _method_weights(z: np.ndarray, kept: list[str], config: ScorecardConfig) -> tuple[np.ndarray, dict]:
    """The weights of the configured method (before optimisation), and a record of how."""
    objective = {"entropy": entropy_weights, "critic": critic_weights}
    if config.method in objective:
        w = objective[config.method](z)
        return w, {"method": config.method}
    expert, record = _expert_weights(z, kept, config)
    if config.method == "ahp":
        return expert, record
    obj = objective[config.objective_method](z)
    w = combined_weights(expert, obj, config.expert_share, config.combination)
    record.update(
        {
            "objective_method": config.objective_method,
            "objective_weights": dict(zip(kept, map(float, obj))),
            "expert_share": config.expert_share,
            "combination": config.combination,
        }
    )
    return w, record


def _expert_weights(z: np.ndarray, kept: list[str], config: ScorecardConfig) -> tuple[np.ndarray, dict]:
    """AHP weights of the kept indicators: items with no kept indicator leave the matrix (its CR is
    checked again), an item's weight is split among its indicators by ``within_group``."""
    ahp = config.ahp
    assert ahp is not None
    members = _item_members(ahp, kept)
    uncovered = [i for i in kept if not any(i in m for m in members.values())]
    if uncovered:
        raise ConfigurationError(
            f"the AHP judgements do not cover the indicators {', '.join(uncovered)}: add them (or a group or "
            "subject holding them) to ahp.items, or leave them out of 'indicators'"
        )
    present = [k for k, item in enumerate(ahp.items) if members[item]]
    items = [ahp.items[k] for k in present]
    matrix = ahp.matrix()[np.ix_(present, present)]
    result = ahp_weights(matrix, items)
    w = np.zeros(len(kept))
    within_methods = {"entropy": entropy_weights, "critic": critic_weights}
    for item, item_weight in zip(items, result.weights):
        cols = [kept.index(i) for i in members[item]]
        if ahp.within_group == "equal" or len(cols) == 1:
            split = np.full(len(cols), 1.0 / len(cols))
        else:
            split = within_methods[ahp.within_group](z[:, cols])
        w[cols] = item_weight * split
    record = {
        "method": "ahp",
        "items": items,
        "dropped_items": [i for i in ahp.items if i not in items],
        "members": {k: v for k, v in members.items() if v},
        "within_group": ahp.within_group,
        **{k: v for k, v in result.to_dict().items() if k != "weights"},
        "item_weights": dict(zip(items, map(float, result.weights))),
    }
    return w, record


__all__ = [
    "AhpJudgements",
    "ScorecardConfig",
    "ScreeningThresholds",
    "WeightOptimisation",
    "Scorecard",
    "Normaliser",
    "InconsistentJudgements",
    "fit_scorecard",
    "screen_indicators",
    "ahp_weights",
    "comparison_matrix",
    "entropy_weights",
    "critic_weights",
    "combined_weights",
    "optimise_weights",
    "cutoffs_from_shares",
    "cutoffs_for_kappa",
    "grades_of",
    "missed_judgement_rate",
    "misjudgement_rate",
    "test_report",
    "event_report",
    "population_stability_index",
    "DEFAULT_GRADE_SHARES",
    "DEFAULT_CATEGORY_SCORES",
]
