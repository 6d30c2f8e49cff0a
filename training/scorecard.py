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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core import indicators as lib
from core.errors import ConfigurationError
from core.kinds import good_graded_low_rate, misjudgement_rate, missed_judgement_rate
from core.scorecard_config import (  # the configuration a province file's ``scorecard:`` section holds
    DEFAULT_CATEGORY_SCORES,
    DEFAULT_GRADE_SHARES,
    AhpJudgements,
    InconsistentJudgements,
    ScorecardConfig,
    ScreeningThresholds,
    WeightOptimisation,
    _credit_ids,
    _item_members,
    _mandatory_ids,
    ahp_weights,
    comparison_matrix,
)

#: Version of ``Scorecard.to_dict``'s layout.
FORMAT_VERSION = 1
#: The credit grades 1 (信用极差) .. 5 (信用极好).
GRADES = (1, 2, 3, 4, 5)
#: Rows the screening statistics (Spearman, PSI) are computed on at most: a sample of a large
#: province's tens of millions gives the same correlations to two decimals.
SCREENING_SAMPLE = 200_000


# -- weighting methods -----------------------------------------------------------------------------


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


def test_report(true, graded) -> dict:
    """指标结果测试 against true grades: quadratic kappa, the specification's 漏判率 and 误判率, the rate
    of truly good or excellent customers graded low, the broader rate of truly average or better
    customers graded 1-2, exact agreement and the true × graded table."""
    t, g = np.asarray(true, int), np.asarray(graded, int)
    broad = t >= 3
    table = confusion_table(t, g)
    return {
        "customers": int(len(t)),
        "quadratic_weighted_kappa": quadratic_kappa(table),
        "missed_judgement_rate": missed_judgement_rate(t, g),
        "misjudgement_rate": misjudgement_rate(t, g),
        "good_graded_low_rate": good_graded_low_rate(t, g),
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

    # 2. normalisation, directions from the library, the outcome or the configuration; an optional
    # indicator nothing gives a direction to is dropped when the group's defaults chose it (the
    # province did not list it), refused when the province's file lists it
    normalisers, direction_source = {}, {}
    for i in list(kept):
        rho = screening.loc[i, "outcome_spearman"] if goodness is not None else None
        try:
            d, source = credit_direction(i, config, rho)
        except ConfigurationError:
            if config.indicators is not None or lib.BY_ID[i].credit_role == "mandatory":
                raise
            kept.remove(i)
            screening.loc[i, ["kept", "dropped_at"]] = [False, "direction"]
            screening.at[i, "reasons"] = [
                *screening.at[i, "reasons"],
                "direction on credit unknown (library 0, no outcome, no 'directions' entry); dropped",
            ]
            continue
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
