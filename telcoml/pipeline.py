"""The jobs of the platform, stage by stage, each a typed function the CLI calls.

generate -> quality gate -> indicators -> feast apply -> materialize -> unified view, and the
compositions built on them: the demo's main job (``run_demo``), bring-your-own-data
(``bring_your_own_data``), training (``train_models``), prepared answers (``prepare_stage``) and
weekly monitoring with backfill (``monitor_weeks``). Each returns a result object and prints
nothing. Progress is reported through optional callbacks so the CLI can draw bars, spinners and
each stage's result as it completes, and tests can stay silent.

Heavy stage modules (Feast, training, serving, monitoring) are imported inside the functions:
importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from core import indicators as lib
from core.errors import ConfigurationError, NotReadyError, TelcomlError
from core.io import atomic_write_text
from core.settings import Settings

if TYPE_CHECKING:
    from features.byod import ByodResult
    from features.generate import GeneratorConfig
    from features.quality import Problem, QualityReport
    from monitoring.weekly import WeekResult
    from serving.batch import BatchResult
    from serving.prepared import PreparedResult
    from training.train import TrainResult

#: ``progress(description, total, unit)`` opens a bar and returns its ``advance(n)``.
Progress = Callable[[str, int | None, int], Callable[[int], None]]
#: ``status(text)`` shows a step without a count while it runs; it gives an ``update(text)``.
Status = Callable[[str], AbstractContextManager[Callable[[str], None]]]


def _no_progress(description: str, total: int | None, _unit: int = 0) -> Callable[[int], None]:
    return lambda _n=1: None


@contextlib.contextmanager
def _no_status(_text: str) -> Iterator[Callable[[str], None]]:
    yield lambda _text: None


def generate_stage(
    settings: Settings, config: GeneratorConfig, progress: Progress = _no_progress
) -> QualityReport:
    """Generate raw tables into a staging folder, pass them through the quality gate, publish.

    Labels and the oracle go to the truth folder. A failed gate publishes nothing.
    """
    from features.generate import generate
    from features.ingest import ingest

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


def quality_report_path(settings: Settings, name: str = "raw") -> Path:
    """Where the gate's latest report of ``name`` is (``raw``: the raw tables; ``byod_XX``)."""
    return settings.reports_dir / "quality" / f"{name}.json"


def write_quality_report(settings: Settings, report: QualityReport, name: str) -> Path:
    """The gate's report as JSON under reports/quality/ (the latest one per name)."""
    path = quality_report_path(settings, name)
    atomic_write_text(json.dumps(report.to_dict(), indent=2, default=str), path)
    return path


def ingest_stage(settings: Settings, source: Path) -> QualityReport:
    """Raw tables from a folder laid out like raw/: all checked first, then each file replaced
    atomically; the gate's report is written. Feedback already applied to a replaced file is applied
    again to the new one (``features.feedback_apply.reopen_for_delivery``)."""
    from features.feedback_apply import apply_feedback, reopen_for_delivery
    from features.ingest import ingest

    reopened = []
    report = ingest(
        source, settings.raw_dir, lambda parts: reopened.append(reopen_for_delivery(settings, parts))
    )
    write_quality_report(settings, report, "raw")
    if sum(reopened):  # feedback applied to a replaced file: written into the new one
        apply_feedback(settings)
    return report


def quality_stage(settings: Settings) -> QualityReport:
    """Re-check everything in the raw folder (all four dimensions) and write the report."""
    from features.quality import check_raw

    if not settings.raw_dir.exists():
        raise NotReadyError(
            f"no raw data in {settings.raw_dir}: run `telcoml generate` or `telcoml ingest` first"
        )
    report = check_raw(settings.raw_dir)
    write_quality_report(settings, report, "raw")
    return report


def indicator_stage(settings: Settings, progress: Progress = _no_progress) -> tuple[int, list]:
    """Compute every indicator per customer per month into the offline store's files."""
    from features.build import available_months, available_provinces, build_indicators
    from features.custom import build_custom_indicators
    from features.provinces import load_provinces

    provinces = available_provinces(settings.raw_dir)
    if not provinces:
        raise NotReadyError(
            f"no subscribers in {settings.raw_dir}: run `telcoml generate` or `telcoml ingest` first"
        )
    configs = load_provinces(settings)  # a bad province file is refused before any work
    months = available_months(settings.raw_dir, provinces[0])
    advance = progress("indicators", len(provinces) * len(months), 0)
    if settings.engine == "spark":  # the production profile: the same functions as Spark jobs
        from core.spark import spark_session
        from features.spark_build import build_indicators_spark

        rows = build_indicators_spark(
            spark_session(settings),
            settings.raw_dir,
            settings.offline_dir,
            provinces,
            months,
            advance,
            customers_per_task=settings.spark_customers_per_task,
        )
    else:
        rows = build_indicators(settings.raw_dir, settings.offline_dir, provinces, months, progress=advance)
    for config in configs:  # provinces' own formula indicators, same layout
        if config.province in provinces:
            build_custom_indicators(config, settings.raw_dir, settings.offline_dir, months)
    return rows, check_latest_snapshot(settings)


def check_latest_snapshot(settings: Settings) -> list[Problem]:
    """The quality check of the newest month's indicators, a province's snapshot part at a time
    (``features.build.snapshot_parts``: a bucket of customers after the Spark build): each
    problem names its province and month, its rows are rows of that province's files."""
    from features.build import snapshot_parts
    from features.quality import check_indicators

    month = latest_month(settings)
    problems = []
    for province, first, part in snapshot_parts(settings.offline_dir, month):
        for problem in check_indicators(part):
            rows = [first + row for row in problem.rows]
            problems.append(replace(problem, rows=rows, province=province, month=month))
    return problems


def latest_month(settings: Settings) -> str:
    """The newest snapshot month of any province."""
    from features.build import offline_snapshots

    months = [month for _, month in offline_snapshots(settings.offline_dir)]
    if not months:
        raise NotReadyError(f"no indicators in {settings.offline_dir}: run `telcoml build` first")
    return max(months)


def feature_store_stage(settings: Settings, month: str | None = None) -> str:
    """Register the repository and load the latest snapshot online; returns the month loaded."""
    from features.store import apply_repository, materialize_as_set

    store = apply_repository(settings)
    month = month or latest_month(settings)
    materialize_as_set(settings, store, month)
    return month


def unified_view(settings: Settings, msisdn: str) -> pd.DataFrame:
    """Every indicator of one customer from the online store, with names from the library."""
    from features.store import open_store

    store = open_store(settings)
    refs = [f"{i.subject}:{i.id}" for i in lib.CATALOGUE]
    row = store.get_online_features(features=refs, entity_rows=[{"msisdn": msisdn}]).to_dict()
    values = {i.id: row[i.id][0] for i in lib.CATALOGUE}
    if all(v is None for v in values.values()):
        raise NotReadyError(
            f"customer {msisdn} has no indicators in the online store "
            "(unknown number, or not materialized: run `telcoml materialize`)"
        )
    return pd.DataFrame(
        [
            {
                "subject": i.subject,
                "indicator": i.id,
                "name_zh": i.name_zh,
                "name_en": i.name_en,
                "value": values[i.id],
                "unit": i.unit,
                "credit": i.credit_role or "",
            }
            for i in lib.CATALOGUE
        ]
    )


def sample_customer(settings: Settings) -> str:
    """A customer of the latest snapshot, for the demo to show."""
    from features.build import offline_file, offline_snapshots

    month = latest_month(settings)
    province = offline_snapshots(settings.offline_dir, "complaints_service", month=month)[0][0]
    first = offline_file(settings.offline_dir, "complaints_service", province, month)
    frame = pd.read_parquet(first, columns=["msisdn", "complaint_count_12m"])
    # someone who has complained, but not the most extreme case
    complained = frame[frame["complaint_count_12m"] > 0].sort_values("complaint_count_12m", kind="stable")
    pool = complained if len(complained) else frame
    return str(pool["msisdn"].iloc[len(pool) // 2])


# --- training, prepared answers, monitoring: the stages after the feature store -------------------


def train_models(
    settings: Settings,
    tasks: Sequence[str] | None = None,
    province: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    seed: int = 7,
    progress: Progress = _no_progress,
    credit_method: str = "both",
    **split,
) -> list[TrainResult]:
    """Tune, train, evaluate against the oracle, register and gate each task's model.

    ``tasks``: names of tasks (None: every task with labels, and the credit scorecard, which
    needs none). ``trials``: None suits the table (``training.tune.TuningBudget.suited``).
    ``credit_method``: the credit scorecard, the supervised credit model, or both
    (``training.train_all.train_all``). ``split``: ``test_month``, ``train_months`` and ``refit`` of
    ``training.train.train_task``. One progress bar per task.
    """
    from core.tasks import task as lookup
    from training.train_all import train_all
    from training.tune import TuningBudget

    names = [lookup(name).name for name in tasks] if tasks else None
    budget = TuningBudget(trials=trials, timeout_seconds=timeout, seed=seed)
    return train_all(
        settings,
        province.upper() if province else None,
        budget,
        names,
        progress=lambda name, total: progress(name, total, 0),
        credit_method=credit_method,
        **split,
    )


def prepare_stage(
    settings: Settings, provinces: Sequence[str] | None = None, progress: Progress = _no_progress
) -> PreparedResult:
    """Every customer's /score answer for the current indicators and champions, into the online store
    (after a background prepare of the same work directory, if one is running)."""
    from serving.autoprepare import prepare_lock, prepare_on_engine
    from serving.champions import load_champions, with_threads

    with prepare_lock(settings):
        models = with_threads(load_champions(settings), 0)  # TreeSHAP is most of the work: every core
        return prepare_on_engine(
            settings, models, provinces, progress=lambda p, n: progress(f"prepare {p}", n, 0)
        )


def prepare_in_background(settings: Settings, why: str) -> Path | None:
    """Start preparing answers in the background (``serving.autoprepare``); the log's path, or None
    when ``TELCOML_AUTO_PREPARE=0``."""
    from serving.autoprepare import start_background_prepare

    return start_background_prepare(settings, why)


def batch_score_stage(
    settings: Settings,
    provinces: list[str] | None = None,
    month: str | None = None,
    chunk_rows: int = 200_000,
    progress: Progress = _no_progress,
) -> list[BatchResult]:
    """Every customer of each province (default: every province with an indicator snapshot of
    ``month``, or any) into its CRM interface file, Parquet and CSV; the champions are loaded
    once, and on the Spark path one session serves every province."""
    from features.build import offline_snapshots
    from serving.batch import score_province
    from serving.champions import load_champions

    if provinces:
        provinces = [p.upper() for p in provinces]
    else:
        provinces = sorted({p for p, _ in offline_snapshots(settings.offline_dir, month=month or "*")})
    if not provinces:
        raise NotReadyError(
            f"no indicator snapshot{' of ' + month if month else ''} in {settings.offline_dir}: "
            "run `telcoml build` first"
        )
    models = load_champions(settings)
    if settings.engine == "spark":  # the production profile: the driver ships the champions to executors
        from core.spark import spark_session
        from serving.spark_batch import score_province_spark

        spark = spark_session(settings)
        return [score_province_spark(spark, settings, p, month, models=models) for p in provinces]
    # one thread per model: on 2 shared cores OpenMP contention halved the rate (benchmarks/README.md)
    return [
        score_province(settings, models, p, month, chunk_rows, progress=progress(f"score {p}", None, 0))
        for p in provinces
    ]


@dataclass
class MonitorRunResult:
    """Weekly monitoring of one week, or of every recorded week of a backfill."""

    weeks: list[str]
    #: weeks of a backfill without records (not monitored)
    skipped: list[str]
    results: list[WeekResult] = field(default_factory=list)
    workspace: Path | None = None

    @property
    def alerts(self) -> int:
        return sum(len(r.alerts) for r in self.results)


MonitorStage = Literal["skipped", "week"]


def monitor_weeks(
    settings: Settings,
    week: str | None = None,
    since: str | None = None,
    provinces: list[str] | None = None,
    tasks: list[str] | None = None,
    status: Status = _no_status,
    on_stage: Callable[[MonitorStage, MonitorRunResult], None] = lambda _stage, _result: None,
) -> MonitorRunResult:
    """Drift and data-quality reports for ``week`` (default: last week), or for every recorded week
    from ``since`` to ``week`` (a backfill; weeks without records are skipped).

    ``on_stage`` is called when weeks were skipped ("skipped", before any is monitored) and after
    each week ("week": its result is the last of ``results``).
    """
    from monitoring.record import iso_week, recorded_weeks
    from monitoring.weekly import monitor_week, monitoring_dir, weeks_between

    week = week or iso_week(datetime.now(UTC) - timedelta(days=7))
    weeks = weeks_between(since, week) if since else [week]
    skipped: list[str] = []
    if since:
        have = set(recorded_weeks(settings))
        skipped = [w for w in weeks if w not in have]
        weeks = [w for w in weeks if w in have]
    run = MonitorRunResult(weeks, skipped, workspace=monitoring_dir(settings) / "workspace")
    if skipped:
        on_stage("skipped", run)
    if not weeks:
        raise TelcomlError(f"no scores recorded in any week from {since} to {week}")
    for w in weeks:
        with status(f"monitoring {w}") as update:
            run.results.append(
                monitor_week(settings, w, provinces, tasks, progress=lambda what, w=w: update(f"{w}: {what}"))
            )
        on_stage("week", run)
    return run


# --- the demo's main job --------------------------------------------------------------------------

DemoStage = Literal["data", "feature_store", "customer", "training", "prepared", "monitoring"]


@dataclass
class DemoKey:
    key: str
    #: the env file holding ``TELCOML_API_KEY=...`` (mode 600)
    path: Path


@dataclass
class DemoWeek:
    #: the snapshot month replayed, and the ISO week it went live
    month: str
    week: str
    weekly: WeekResult
    #: "quiet" (after the champions' test month, before the market changes) or "drift"
    kind: str


@dataclass
class DemoMonitoring:
    weeks: list[DemoWeek]
    workspace: Path

    @property
    def weekly(self) -> WeekResult:
        """The drift week's result (the last)."""
        return self.weeks[-1].weekly


@dataclass
class DemoResult:
    """What the main job did, filled stage by stage (``on_stage`` sees it grow); complete on return."""

    settings: Settings
    quality: QualityReport | None = None
    indicator_rows: int = 0
    indicator_problems: list[Problem] = field(default_factory=list)
    #: the snapshot month loaded online
    month: str = ""
    msisdn: str = ""
    view: pd.DataFrame | None = None
    training: list[TrainResult] = field(default_factory=list)
    prepared: PreparedResult | None = None
    key: DemoKey | None = None
    monitoring: DemoMonitoring | None = None
    seconds: float = 0.0


#: The demo needs a training month, a validation month, the test month, a quiet month and the drift month.
DEMO_MIN_MONTHS = 5


def demo_config(customers: int, months: int = 13, seed: int = 7) -> GeneratorConfig:
    """The demo's world: four provinces from 2025-11 (by default to 2026-11); the market changes
    in the last month, so the month before it is a quiet one after the champions' test month."""
    from core.io import month_list
    from features.generate import GeneratorConfig

    if months < DEMO_MIN_MONTHS:
        raise ConfigurationError(
            f"--months {months}: the demo needs at least {DEMO_MIN_MONTHS} (train, validate, test, "
            "a quiet month and the month the market changes)"
        )
    return GeneratorConfig(
        customers=customers,
        months=months,
        start_month="2025-11",
        seed=seed,
        drift_month=month_list("2025-11", months)[-1],
        provinces=("GD", "SC", "HE", "ZJ"),
    )


def run_demo(
    settings: Settings,
    customers: int = 20_000,
    trials: int = 5,
    progress: Progress = _no_progress,
    *,
    months: int = 13,
    seed: int = 7,
    status: Status = _no_status,
    on_stage: Callable[[DemoStage, DemoResult], None] = lambda _stage, _result: None,
) -> DemoResult:
    """The main job end to end: generate -> quality gate -> indicators -> feast apply + materialize ->
    one customer's unified view -> train every model (tested on the third-to-last month) ->
    prepare answers -> a demo API key -> replay the quiet month and the drift month into
    monitoring and report both weeks side by side.

    ``on_stage(stage, result)`` is called as each stage completes ("data" after the gate and the
    indicators, then "feature_store", "customer", "training", "prepared", "monitoring").
    """
    started = time.perf_counter()
    result = DemoResult(settings)
    config = demo_config(customers, months, seed)
    result.quality = generate_stage(settings, config, progress=progress)
    result.indicator_rows, result.indicator_problems = indicator_stage(settings, progress=progress)
    on_stage("data", result)

    with status("feast apply + materialize"):
        result.month = feature_store_stage(settings)
    on_stage("feature_store", result)

    result.msisdn = sample_customer(settings)
    result.view = unified_view(settings, result.msisdn)
    on_stage("customer", result)

    test_month, quiet_month, drift_month = config.month_names[-3:]
    result.training = train_models(
        settings, trials=trials, seed=seed, progress=progress, test_month=test_month
    )
    on_stage("training", result)

    result.prepared = prepare_stage(settings, progress=progress)
    on_stage("prepared", result)

    result.key = demo_key(settings)

    from monitoring.weekly import monitor_week, monitoring_dir
    from serving.batch import replay_month

    weeks = []
    for month, kind in ((quiet_month, "quiet"), (drift_month, "drift")):
        with status(f"weekly monitoring: replaying the {month} snapshot ({kind}) into the week it went live"):
            week = replay_month(settings, month)
            weeks.append(DemoWeek(month, week, monitor_week(settings, week), kind))
    result.monitoring = DemoMonitoring(weeks, monitoring_dir(settings) / "workspace")
    on_stage("monitoring", result)
    result.seconds = time.perf_counter() - started
    return result


def demo_key(settings: Settings, name: str = "demo") -> DemoKey:
    """Create (or replace) the demo's API key and keep it in ``serving/demo_api_key.env`` (mode 600)."""
    from serving.security import create_key

    key = create_key(settings, name)
    path = settings.workdir / "serving" / "demo_api_key.env"
    atomic_write_text(f"TELCOML_API_KEY={key}\n", path)  # created owner-only (0600), never readable
    return DemoKey(key, path)


# --- bring your own data --------------------------------------------------------------------------

ByodStage = Literal["checked", "training"]


@dataclass
class ByodRunResult:
    """A province's own data through the gate into the feature store, and the models trained on it."""

    byod: ByodResult
    #: the gate's report, reports/quality/byod_<province>.json
    report_path: Path
    #: None when training was not asked for or no model can be trained
    training: list[TrainResult] | None = None


def bring_your_own_data(
    settings: Settings,
    mapping_path: Path,
    train: bool = False,
    trials: int | None = None,
    progress: Progress = _no_progress,
    *,
    seed: int = 7,
    status: Status = _no_status,
    on_stage: Callable[[ByodStage, ByodRunResult], None] = lambda _stage, _result: None,
    replace: bool = False,
) -> ByodRunResult:
    """Check a province's customer table, write its offline store, apply Feast and materialize;
    with ``train``, then train the models whose labels and indicators the data has (those it
    cannot train are in ``byod.models_untrainable``, with the indicators each lacks).

    Without ``replace`` the table's months are added or updated and the province's other months
    kept; with it the table becomes the province's whole history. Either way the files replaced
    are kept as the previous generation (``features.byod``). ``on_stage`` is called after the data
    passed the gate ("checked") and after training ("training").
    """
    from features.byod import run_byod

    with status("quality gate, offline store, feast apply + materialize"):
        byod = run_byod(settings, mapping_path, replace=replace)
    result = ByodRunResult(byod, write_quality_report(settings, byod.report, f"byod_{byod.province}"))
    on_stage("checked", result)
    # a labelled model lacking indicators is not attempted; the credit scorecard needs no labels
    tasks = list(byod.models_trainable)
    credit = lib.CREDIT_GRADE
    if byod.credit_scorecard and credit not in tasks:
        tasks.append(credit)
    if train and tasks:
        result.training = train_models(
            settings,
            tasks,
            byod.province,
            trials=trials,
            seed=seed,
            progress=progress,
            credit_method="both" if credit in byod.models_trainable else "scorecard",
        )
        on_stage("training", result)
    return result
