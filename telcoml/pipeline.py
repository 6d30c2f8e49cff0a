"""The feature-store job, stage by stage, each a typed function the CLI calls.

generate -> quality gate -> indicators -> feast apply -> materialize -> unified view.
Progress is reported through an optional callback so the CLI can draw bars and tests
can stay silent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core import indicators as lib
from features.build import available_months, available_provinces, build_indicators
from features.custom import build_custom_indicators
from features.generate import GeneratorConfig, generate
from core.io import atomic_write_text
from features.provinces import load_provinces
from features.quality import QualityReport, check_indicators, check_raw, ingest
from features.store import apply_repository, materialize_latest, open_store
from core.errors import NotReadyError
from core.settings import Settings

Progress = Callable[[str, int, int], Callable[[int], None]]


def _no_progress(description: str, total: int, _unit: int = 0) -> Callable[[int], None]:
    return lambda _n: None


@dataclass
class StageResult:
    stage: str
    rows: int
    seconds: float
    detail: str = ""


def generate_stage(settings: Settings, config: GeneratorConfig, progress: Progress = _no_progress) -> QualityReport:
    """Generate raw tables into a staging folder, pass them through the quality gate, publish.

    Labels and the oracle go to the truth folder. A failed gate publishes nothing.
    """
    settings.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=settings.workdir) as staging:
        staging_raw = Path(staging) / "raw"
        staging_truth = Path(staging) / "truth"
        advance = progress("generate", len(config.provinces) * config.months, 0)
        generate(config, staging_raw, staging_truth, progress=advance)
        report = ingest(staging_raw, settings.raw_dir)
        settings.truth_dir.mkdir(parents=True, exist_ok=True)
        for kind in ("labels", "oracle"):
            target = settings.truth_dir / kind
            if target.exists():
                shutil.rmtree(target)
            shutil.move(str(staging_truth / kind), str(target))
    write_quality_report(settings, report, "raw")
    return report


def write_quality_report(settings: Settings, report: QualityReport, name: str) -> Path:
    """The gate's report as JSON under reports/quality/ (the latest one per name)."""
    path = settings.reports_dir / "quality" / f"{name}.json"
    atomic_write_text(json.dumps(report.to_dict(), indent=2, default=str), path)
    return path


def quality_stage(settings: Settings) -> QualityReport:
    """Re-check everything in the raw folder (all four dimensions) and write the report."""
    if not settings.raw_dir.exists():
        raise NotReadyError(f"no raw data in {settings.raw_dir}: run `telcoml generate` or `telcoml ingest` first")
    report = check_raw(settings.raw_dir)
    write_quality_report(settings, report, "raw")
    return report


def indicator_stage(settings: Settings, progress: Progress = _no_progress) -> tuple[int, list]:
    """Compute every indicator per customer per month into the offline store's files."""
    provinces = available_provinces(settings.raw_dir)
    if not provinces:
        raise NotReadyError(f"no subscribers in {settings.raw_dir}: run `telcoml generate` or `telcoml ingest` first")
    months = available_months(settings.raw_dir, provinces[0])
    advance = progress("indicators", len(provinces) * len(months), 0)
    rows = build_indicators(settings.raw_dir, settings.offline_dir, provinces, months, progress=advance)
    for config in load_provinces(settings):  # provinces' own formula indicators, same layout
        if config.province in provinces:
            build_custom_indicators(config, settings.raw_dir, settings.offline_dir, months)
    latest = latest_snapshot(settings)
    problems = check_indicators(latest)
    return rows, problems


def latest_snapshot(settings: Settings) -> pd.DataFrame:
    """The newest month's indicators of every province, joined across subjects."""
    month = latest_month(settings)
    frames = []
    for subject in lib.SUBJECTS:
        files = sorted((settings.offline_dir / subject).glob(f"*_{month}.parquet"))
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        frames.append(frame.drop(columns=["event_timestamp", "created_timestamp"]).set_index("msisdn"))
    return pd.concat(frames, axis=1).reset_index()


def latest_month(settings: Settings) -> str:
    files = sorted((settings.offline_dir / "profile").glob("*.parquet"))
    if not files:
        raise NotReadyError(f"no indicators in {settings.offline_dir}: run `telcoml build` first")
    return max(f.stem.split("_", 1)[1] for f in files)


def feature_store_stage(settings: Settings, month: str | None = None) -> str:
    """Register the repository and load the latest snapshot online; returns the month loaded."""
    store = apply_repository(settings)
    month = month or latest_month(settings)
    materialize_latest(store, month)
    return month


def unified_view(settings: Settings, msisdn: str) -> pd.DataFrame:
    """Every indicator of one customer from the online store, with names from the library."""
    store = open_store(settings)
    refs = [f"{i.subject}:{i.id}" for i in lib.CATALOGUE]
    row = store.get_online_features(features=refs, entity_rows=[{"msisdn": msisdn}]).to_dict()
    values = {i.id: row[i.id][0] for i in lib.CATALOGUE}
    if all(v is None for v in values.values()):
        raise NotReadyError(f"customer {msisdn} has no indicators in the online store "
                            "(unknown number, or not materialized: run `telcoml materialize`)")
    return pd.DataFrame([
        {"subject": i.subject, "indicator": i.id, "name_zh": i.name_zh, "name_en": i.name_en,
         "value": values[i.id], "unit": i.unit, "credit": i.credit_role or ""}
        for i in lib.CATALOGUE
    ])


def sample_customer(settings: Settings) -> str:
    """A customer of the latest snapshot, for the demo to show."""
    month = latest_month(settings)
    first = sorted((settings.offline_dir / "complaints_service").glob(f"*_{month}.parquet"))[0]
    frame = pd.read_parquet(first, columns=["msisdn", "complaint_count_12m"])
    # someone who has complained, but not the most extreme case
    complained = frame[frame["complaint_count_12m"] > 0].sort_values("complaint_count_12m", kind="stable")
    pool = complained if len(complained) else frame
    return str(pool["msisdn"].iloc[len(pool) // 2])
