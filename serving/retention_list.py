"""`telcoml retention`: a province's retention list, its cut-off for serving, and the health report.

The wiring around ``serving.retention``'s pure transforms: read the province's snapshot (and the
month before, for the rules on a change) from the offline store, score churn with the champion
answering the province, write the list (Parquet and CSV, owner-only: it holds phone numbers) and
the cut-off serving reads, atomically. The health report (保有后健康度) takes a past month's list
and the month after: which warned customers stayed (the matured label ``churned_next_month``) and
how their bill and usage moved; it goes beside the weekly monitoring reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from core import indicators as lib
from core.errors import ConfigurationError, NotReadyError
from core.io import atomic_write_parquet, atomic_write_text
from core.settings import Settings
from features.build import offline_snapshots
from monitoring.record import monitoring_dir
from serving.batch import latest_month_for, snapshot_chunks
from serving.champions import ModelSet
from serving.retention import CHURN_TASK, RetentionCutoff, assess, settings_of, write_cutoff
from training.data import load_labels

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
#: What the health report compares between a list's month and the month after.
HEALTH_INDICATORS = ("monthly_consumption", "voice_minutes", "data_mb")


@dataclass
class RetentionResult:
    province: str
    month: str
    customers: int
    counts: dict[str, int]
    cutoff: float
    parquet: Path
    csv: Path
    cutoff_file: Path
    health: dict | None = None
    health_report: Path | None = None
    notes: list[str] = field(default_factory=list)


def snapshot(settings: Settings, province: str, month: str) -> pd.DataFrame:
    """The province's whole month-end snapshot, every subject joined (one frame: a province's
    list is ranked over all its customers)."""
    return pd.concat(list(snapshot_chunks(settings, province, month, 500_000)), ignore_index=True)


def _months(settings: Settings, province: str) -> list[str]:
    return sorted(month for _, month in offline_snapshots(settings.offline_dir, province=province))


def assess_month(
    settings: Settings, models: ModelSet, province: str, month: str
) -> tuple[pd.DataFrame, float, pd.DataFrame]:
    """(table, cut-off, snapshot): every customer of the province-month assessed
    (``serving.retention.assess``) with the churn champion answering the province."""
    if CHURN_TASK not in models.models:
        raise NotReadyError(f"no churn champion answers {province}: run `telcoml train --task churn`")
    frame = snapshot(settings, province, month)
    months = _months(settings, province)
    before = [m for m in months if m < month]
    previous = snapshot(settings, province, before[-1]) if before else None
    probability = models.probabilities(frame)[CHURN_TASK]
    return (*assess(frame, probability, settings_of(models.config), previous), frame)


def counts(table: pd.DataFrame) -> dict[str, int]:
    core = table["core"]
    return {
        "customers": len(table),
        "core": int(core.sum()),
        "threshold_warned": int((core & table["threshold_warned"]).sum()),
        "composite_warned": int((core & table["composite_warned"]).sum()),
        "on_list": int(table["on_list"].sum()),
    }


def retention_dir(settings: Settings) -> Path:
    return settings.workdir / "retention"


def run_retention(
    settings: Settings,
    models: ModelSet,
    province: str,
    month: str | None = None,
    health_month: str | None = None,
) -> RetentionResult:
    """Write the province's retention list and cut-off for ``month`` (default: the latest snapshot),
    and the health report of ``health_month`` (default: the newest month whose labels matured)."""
    province = province.upper()
    if province not in lib.PROVINCES:
        raise ConfigurationError(f"unknown province {province!r}; valid codes: {', '.join(lib.PROVINCES)}")
    for given in (month, health_month):
        if given is not None and not _MONTH.fullmatch(given):
            raise ConfigurationError(f"month {given!r} is not a month like 2026-06")
    models = models.for_province(province)
    month = month or latest_month_for(settings, province)
    table, cutoff, _ = assess_month(settings, models, province, month)
    listed = table[
        table["on_list"] | (table["core"] & (table["threshold_warned"] | table["composite_warned"]))
    ]
    listed = listed.sort_values(["list_rank", "churn_probability"], ascending=[True, False], key=_list_first)
    out = retention_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    parquet, csv = out / f"retention_{province}_{month}.parquet", out / f"retention_{province}_{month}.csv"
    atomic_write_parquet(listed, parquet)
    atomic_write_text(listed.to_csv(index=False), csv)
    n = counts(table)
    record = RetentionCutoff(
        province, month, cutoff, n["on_list"], n["core"], datetime.now(UTC).isoformat(timespec="seconds")
    )
    result = RetentionResult(
        province, month, len(table), n, cutoff, parquet, csv, write_cutoff(settings.workdir, record)
    )
    past = health_month or _matured_month(settings, province, month)
    if past is None:
        result.notes.append(f"no health report: no month before {month} with matured churn labels")
    else:
        result.health, result.health_report = health_report(settings, models, province, past)
    return result


def _list_first(column: pd.Series) -> pd.Series:
    """Sort key: listed customers by rank, then the others (rank 0) after them."""
    return column.replace(0, np.iinfo(np.int64).max) if column.name == "list_rank" else column


def _matured_month(settings: Settings, province: str, month: str) -> str | None:
    """The newest month before ``month`` with the month after in the store and churn labels."""
    months = _months(settings, province)
    labels = load_labels(settings, province)
    labelled = set(labels.loc[labels["churned_next_month"].notna(), "month"].astype(str))
    candidates = [m for m, after in zip(months, months[1:]) if m < month and m in labelled and after <= month]
    return candidates[-1] if candidates else None


def _change(before: pd.Series, after: pd.Series) -> pd.Series:
    before, after = pd.to_numeric(before, errors="coerce"), pd.to_numeric(after, errors="coerce")
    return (after / before - 1).where(before > 0)


def health(table: pd.DataFrame, labels: pd.DataFrame, now: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """保有后健康度, pure: per warned group (on the list, warned by thresholds, warned by the composite,
    core and never warned), how many, the share still a customer the month after (``churned_next_month``
    0), and the median change of the retained customers' bill and usage (the month after / the list's
    month - 1)."""
    moved = now[["msisdn", *HEALTH_INDICATORS]].merge(
        after[["msisdn", *HEALTH_INDICATORS]], on="msisdn", how="left", suffixes=("", "_after")
    )
    for ind in HEALTH_INDICATORS:
        moved[f"{ind}_change"] = _change(moved[ind], moved[f"{ind}_after"])
    joined = table.merge(labels[["msisdn", "churned_next_month"]], on="msisdn", how="left").merge(
        moved[["msisdn", *(f"{i}_change" for i in HEALTH_INDICATORS)]], on="msisdn", how="left"
    )
    warned = joined["threshold_warned"] | joined["composite_warned"]
    groups = {
        "on_list": joined["on_list"],
        "threshold_warned": joined["core"] & joined["threshold_warned"],
        "composite_warned": joined["core"] & joined["composite_warned"],
        "core_not_warned": joined["core"] & ~warned & ~joined["on_list"],
    }
    rows = []
    for name, chosen in groups.items():
        group = joined[chosen & joined["churned_next_month"].notna()]
        kept = group[group["churned_next_month"] == 0]
        row = {"group": name, "customers": int(chosen.sum()), "labelled": len(group), "retained": len(kept)}
        row["retained_share"] = round(len(kept) / len(group), 4) if len(group) else None
        for ind in HEALTH_INDICATORS:
            median = kept[f"{ind}_change"].median()
            row[f"{ind}_change_median"] = None if pd.isna(median) else round(float(median), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def health_report(settings: Settings, models: ModelSet, province: str, month: str) -> tuple[dict, Path]:
    """The health report of ``month``'s list, written to ``monitoring/reports/retention/<PROV>/``."""
    months = _months(settings, province)
    if month not in months or months.index(month) + 1 >= len(months):
        raise NotReadyError(
            f"no snapshot after {month} for {province}: the health report needs the month after"
        )
    after_month = months[months.index(month) + 1]
    table, cutoff, now = assess_month(settings, models, province, month)
    labels = load_labels(settings, province)
    labels = labels[labels["month"].astype(str) == month]
    after = snapshot(settings, province, after_month)
    groups = health(table, labels, now, after)
    report = {
        "province": province,
        "list_month": month,
        "after_month": after_month,
        "cutoff": cutoff,
        "counts": counts(table),
        "groups": groups.to_dict(orient="records"),
        "note": "retained: still a customer the month after (churned_next_month = 0); changes are medians "
        "of the retained customers' month-after value over the list month's, minus 1",
    }
    out = monitoring_dir(settings) / "reports" / "retention" / province
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        json.dumps(report, indent=2, ensure_ascii=False, default=_plain), out / f"{month}.json", mode=0o644
    )
    lines = [
        f"# 保有后健康度 — retention health, {province}, list of {month}, seen in {after_month}",
        "",
        f"cut-off {cutoff:.4f}; " + ", ".join(f"{k} {v:,}" for k, v in report["counts"].items()),
        "",
        *_markdown(groups),
        "",
        report["note"],
    ]
    atomic_write_text("\n".join(lines) + "\n", out / f"{month}.md", mode=0o644)
    return report, out / f"{month}.md"


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def _markdown(table: pd.DataFrame) -> list[str]:
    cells = table.astype(object).where(table.notna(), "")
    return [
        "| " + " | ".join(table.columns) + " |",
        "|" + "---|" * len(table.columns),
        *("| " + " | ".join(str(v) for v in row) + " |" for row in cells.itertuples(index=False)),
    ]


__all__ = ["RetentionResult", "health", "health_report", "run_retention"]
