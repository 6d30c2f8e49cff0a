"""The credit scorecard's configuration, as a province file's ``scorecard:`` section holds it, and
the experts' AHP judgements with Saaty's consistency check.

Pure (numpy, pydantic): ``features.provinces`` validates a province file's section with it,
``training.scorecard`` fits the scorecard it describes. The specification's method and the meaning
of each setting are described in ``training.scorecard``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from core import indicators as lib
from core.errors import ConfigurationError

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


class InconsistentJudgements(ConfigurationError, ValueError):
    """Pairwise judgements whose consistency ratio exceeds 0.1 (a ValueError, so a province
    file's validation reports it at its line)."""


# -- configuration -------------------------------------------------------------------------------


def _mandatory_ids() -> list[str]:
    return [i.id for i in lib.credit_indicators("mandatory")]


def _credit_ids() -> list[str]:
    """The library's indicators of the credit evaluation: the specification's nine mandatory and six
    optional ones, and the imported credit data (red/black lists, small gifts)."""
    return [i.id for i in lib.for_task(lib.CREDIT_GRADE)]


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
