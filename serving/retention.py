"""Core customer retention (核心客户保有): who is core, who is warned, who is on the retention list.

Pure transforms over an indicator frame (one row per customer, the library's columns) and the
churn champion's probabilities; the province file's ``retention:`` section
(``core.retention_config``) holds every value. Three answers, side by side:

* the core rule: core customers, the ones worth a retention call;
* the two warning methods of the group's specification: configured indicator thresholds
  (指标配置预警判别法: each rule named when it fires, warned when ``rules_to_warn`` fire) and a
  composite index (指标综合评估法: weighted standard scores, warned at its percentile);
* the retention list: the province's top ``count`` or ``share`` of core customers by churn
  probability (the team's capacity, not a fixed probability), and the cut-off that gives it.

Serving reads the cut-off (``RetentionCutoff``, a small JSON per province written by
``telcoml retention``) and marks a churn answer ``retention`` when the customer is core and at
or above it; the churn task's retention advice follows that mark (``core.tasks``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.io import atomic_write_text
from core.retention_config import Capacity, CoreRule, RetentionConfig, ThresholdRule

#: The task whose probability ranks the retention list.
CHURN_TASK = "churn"


def settings_of(config) -> RetentionConfig:
    """The province file's retention section, or the group's defaults without a file."""
    return getattr(config, "retention", None) or RetentionConfig()


def _numbers(features, column: str) -> np.ndarray:
    """A column as floats (NaN where missing or absent); ``features``: a DataFrame or the online
    store's ``Features``."""
    n = len(features)
    if column not in features:
        return np.full(n, np.nan)
    return pd.to_numeric(pd.Series(np.asarray(features[column], dtype=object)), errors="coerce").to_numpy(
        dtype=float
    )


def core_customers(features, rule: CoreRule) -> np.ndarray:
    """Core customers: ARPU and tenure both at their minimum, or a core category (an indicator a
    province's data lacks counts as not met)."""
    valuable = (_numbers(features, "arpu_3m") >= rule.min_arpu_3m) & (
        _numbers(features, "tenure_months") >= rule.min_tenure_months
    )
    if "customer_category" in features and rule.categories:
        category = np.asarray(features["customer_category"], dtype=object)
        valuable |= np.isin(category, list(rule.categories))
    return valuable


def rule_values(frame: pd.DataFrame, rule: ThresholdRule, previous: pd.DataFrame | None) -> np.ndarray:
    """What a rule compares: the indicator, or its relative change since ``previous`` (the month
    before, matched by MSISDN; NaN without it or from nothing)."""
    current = _numbers(frame, rule.indicator)
    if not rule.change:
        return current
    if previous is None or rule.indicator not in previous:
        return np.full(len(frame), np.nan)
    before = previous.set_index("msisdn")[rule.indicator].reindex(frame["msisdn"].to_numpy())
    before = pd.to_numeric(before, errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before > 0, current / before - 1, np.nan)


def threshold_warnings(
    frame: pd.DataFrame, config: RetentionConfig, previous: pd.DataFrame | None = None
) -> pd.DataFrame:
    """指标配置预警判别法: one boolean column per rule, ``rule_<name>`` (fired), ``rules_fired`` (their
    names, ``;`` joined) and ``threshold_warned`` (at least ``rules_to_warn`` fired). A missing value
    never fires."""
    fired = {}
    for name, rule in config.warning_rules.items():
        values = rule_values(frame, rule, previous)
        with np.errstate(invalid="ignore"):
            hit = values >= rule.threshold if rule.at_least is not None else values <= rule.threshold
        fired[name] = hit & ~np.isnan(values)
    # prefixed: a rule's name never clashes with the list's other columns
    out = pd.DataFrame({f"rule_{name}": hit for name, hit in fired.items()}, index=frame.index)
    out["rules_fired"] = [";".join(n for n, f in zip(fired, row) if f) for row in zip(*fired.values())]
    out["threshold_warned"] = np.sum(list(fired.values()), axis=0) >= config.rules_to_warn
    return out


def composite_index(frame: pd.DataFrame, weights: dict[str, float]) -> np.ndarray:
    """指标综合评估法: the weighted mean of the indicators' standard scores over ``frame``
    (Σ wᵢ·zᵢ / Σ|wᵢ|); a missing value or a constant indicator scores 0 (the mean)."""
    total = np.zeros(len(frame))
    for indicator, weight in weights.items():
        values = _numbers(frame, indicator)
        spread = np.nanstd(values) if np.isfinite(values).any() else 0.0
        z = (values - np.nanmean(values)) / spread if spread > 0 else np.zeros(len(frame))
        total += weight * np.nan_to_num(z, nan=0.0)
    return total / sum(abs(w) for w in weights.values())


def composite_warned(index: np.ndarray, percentile: float) -> np.ndarray:
    """Warned at or above the index's ``percentile`` (linear interpolation, numpy's default)."""
    if len(index) == 0:
        return np.zeros(0, dtype=bool)
    return index >= np.percentile(index, percentile)


def list_size(core_count: int, capacity: Capacity) -> int:
    """How many core customers the list holds: ``count``, else ``share`` of them rounded down (at
    least one while there is a core customer), never more than there are."""
    if core_count == 0:
        return 0
    wanted = capacity.count if capacity.count is not None else math.floor(capacity.share * core_count + 1e-9)
    return min(core_count, max(1, wanted))


def retention_list(probability: np.ndarray, core: np.ndarray, capacity: Capacity) -> tuple[np.ndarray, float]:
    """(rank on the list, 1 first, 0 off it; the cut-off): the ``list_size`` core customers most
    likely to churn, ties broken by position. The cut-off is the last listed customer's
    probability (NaN for an empty list): serving lists a core customer at or above it."""
    probability = np.asarray(probability, dtype=float)
    rank = np.zeros(len(probability), dtype=int)
    candidates = np.flatnonzero(core)
    size = list_size(len(candidates), capacity)
    if size == 0:
        return rank, float("nan")
    chosen = candidates[np.argsort(-probability[candidates], kind="stable")[:size]]
    rank[chosen] = np.arange(1, size + 1)
    return rank, float(probability[chosen[-1]])


def reasons(table: pd.DataFrame, config: RetentionConfig, cutoff: float) -> tuple[list[str], list[str]]:
    """Each row's reason in English and Chinese: core or not, the list, the rules fired, the index."""
    words = {name: rule.words() for name, rule in config.warning_rules.items()}
    en, zh = [], []
    for row in table.itertuples(index=False):
        e = ["Core customer" if row.core else "Not a core customer"]
        z = ["核心客户" if row.core else "非核心客户"]
        if row.list_rank:
            e.append(
                f"on the retention list, #{row.list_rank} (churn {row.churn_probability:.1%} ≥ {cutoff:.1%})"
            )
            z.append(f"列入保有名单第{row.list_rank}位（流失概率{row.churn_probability:.1%}≥{cutoff:.1%}）")
        fired = [n for n in row.rules_fired.split(";") if n]
        if fired:
            e.append("rules fired: " + ", ".join(words[n][0] for n in fired))
            z.append("触发预警规则：" + "、".join(words[n][1] for n in fired))
        if row.composite_warned:
            e.append(
                f"composite index {row.composite_index:.2f} at or above its P{config.composite.percentile:g}"
            )
            z.append(f"综合评估指数{row.composite_index:.2f}，达到P{config.composite.percentile:g}预警线")
        en.append("; ".join(e) + ".")
        zh.append("；".join(z) + "。")
    return en, zh


def assess(
    frame: pd.DataFrame,
    probability: np.ndarray,
    config: RetentionConfig,
    previous: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, float]:
    """Every customer of ``frame`` (one province's snapshot) assessed: (table, the list's cut-off).

    Columns: msisdn, core, churn_probability, list_rank (0 off the list), on_list, one flag per
    threshold rule, rules_fired, threshold_warned, composite_index, composite_warned, reason_en,
    reason_zh. The composite is standardized and its percentile taken over the province's customers.
    """
    core = core_customers(frame, config.core_rule)
    rank, cutoff = retention_list(probability, core, config.capacity)
    index = composite_index(frame, config.composite.weights)
    table = pd.DataFrame(
        {
            "msisdn": frame["msisdn"].astype(str).to_numpy(),
            "core": core,
            "churn_probability": np.round(np.asarray(probability, dtype=float), 6),
            "list_rank": rank,
            "on_list": rank > 0,
        }
    )
    table = pd.concat([table, threshold_warnings(frame, config, previous).reset_index(drop=True)], axis=1)
    table["composite_index"] = np.round(index, 4)
    table["composite_warned"] = composite_warned(index, config.composite.percentile)
    table["reason_en"], table["reason_zh"] = reasons(table, config, cutoff)
    return table, cutoff


# -- the cut-off serving reads --------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionCutoff:
    """The churn probability at which a province's core customers are on its retention list."""

    province: str
    month: str
    cutoff: float
    list_size: int
    core_customers: int
    computed_at: str
    task: str = CHURN_TASK


def listed(probability: np.ndarray, features, config, cutoff: RetentionCutoff) -> np.ndarray:
    """Whether each customer is on the province's retention list: a core customer at or above the
    cut-off."""
    core = core_customers(features, settings_of(config).core_rule)
    return core & (np.asarray(probability, dtype=float) >= cutoff.cutoff)


def mark(blocks: list[dict], probability: np.ndarray, features, config, cutoff: RetentionCutoff) -> None:
    """Set each churn answer block's ``retention`` (``listed``)."""
    for block, flag in zip(blocks, listed(probability, features, config, cutoff)):
        block["retention"] = bool(flag)


def cutoff_path(workdir: Path, province: str) -> Path:
    return Path(workdir) / "retention" / f"cutoff_{province.upper()}.json"


def write_cutoff(workdir: Path, cutoff: RetentionCutoff) -> Path:
    path = cutoff_path(workdir, cutoff.province)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(asdict(cutoff), indent=2), path, mode=0o644)
    return path


def read_cutoff(workdir: Path, province: str) -> RetentionCutoff | None:
    """The province's cut-off, or None (no list computed yet, or an empty one: the band decides)."""
    path = cutoff_path(workdir, province)
    if not path.exists():
        return None
    cutoff = RetentionCutoff(**json.loads(path.read_text()))
    return cutoff if math.isfinite(cutoff.cutoff) else None


__all__ = [
    "RetentionCutoff",
    "listed",
    "assess",
    "composite_index",
    "composite_warned",
    "core_customers",
    "list_size",
    "mark",
    "read_cutoff",
    "retention_list",
    "threshold_warnings",
    "write_cutoff",
]
