"""The ``telcoml`` command line: one entry point, a subcommand per stage.

Errors a user can meet (``TelcomlError``) print as one clear message and exit 1; no
traceback.
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core import indicators as lib
from core.errors import TelcomlError
from core.settings import Settings, get_settings

app = typer.Typer(help="telcoml: customer evaluations for customer service.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console()

Workdir = Annotated[Optional[Path], typer.Option("--workdir", "-w", help="Work directory (default: $TELCOML_WORKDIR or ./telcoml-work).")]
OnlineStore = Annotated[Optional[str], typer.Option("--online-store", help="sqlite (default) or redis.")]


def _settings(workdir: Path | None, online_store: str | None = None) -> Settings:
    return get_settings(workdir=workdir, online_store=online_store)


def user_errors(func):
    """Turn the project's own errors into a clear message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TelcomlError as err:
            console.print(f"[bold red]error:[/] {err}")
            raise typer.Exit(1) from None

    return wrapper


@contextlib.contextmanager
def _bars():
    """Progress bars for long steps; the pipeline asks for one bar per stage."""
    with Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        def make(description: str, total: int | None, _unit: int = 0):
            task = progress.add_task(description, total=total)
            return lambda n=1: progress.advance(task, n)
        yield make


def _generator_config(customers: int, months: int, start_month: str, seed: int, drift_month: str | None,
                      provinces: str):
    from features.generate import GeneratorConfig

    return GeneratorConfig(customers=customers, months=months, start_month=start_month, seed=seed,
                           drift_month=drift_month or None,
                           provinces=tuple(p.strip().upper() for p in provinces.split(",") if p.strip()))


def _print_quality(report) -> None:
    table = Table(title="Data quality gate (completeness, accuracy, timeliness, authenticity)")
    for col in ("table", "rows", "reject", "warn"):
        table.add_column(col, justify="right" if col != "table" else "left")
    for name, summary in report.per_table.items():
        counts = {"reject": 0, "warn": 0}
        for p in report.problems:
            if p.table == name:
                counts[p.severity] += 1
        table.add_row(name, f"{summary.get('rows', 0):,}", str(counts["reject"]), str(counts["warn"]))
    console.print(table)
    for p in report.problems[:10]:
        console.print(f"  [{'red' if p.severity == 'reject' else 'yellow'}]{p.severity}[/] {p}")


@app.command()
@user_errors
def generate(
    workdir: Workdir = None,
    customers: Annotated[int, typer.Option(help="Subscribers across all provinces.")] = 10_000,
    months: Annotated[int, typer.Option(help="Months of history.")] = 12,
    start_month: Annotated[str, typer.Option(help="First month, YYYY-MM.")] = "2025-11",
    seed: int = 7,
    drift_month: Annotated[str, typer.Option(help="Month the world changes (tariff change, competitor offer); '' for none.")] = "2026-10",
    provinces: Annotated[str, typer.Option(help="Comma-separated province codes.")] = "GD,SC,HE,ZJ",
) -> None:
    """Generate synthetic operator data, pass it through the quality gate and publish it."""
    from telcoml.pipeline import generate_stage

    settings = _settings(workdir)
    config = _generator_config(customers, months, start_month, seed, drift_month, provinces)
    with _bars() as bars:
        report = generate_stage(settings, config, progress=bars)
    _print_quality(report)


@app.command()
@user_errors
def ingest(
    source: Annotated[Path, typer.Argument(help="Folder laid out like raw/: <table>/province=XX[/month=YYYY-MM]/part-0.parquet")],
    workdir: Workdir = None,
) -> None:
    """Ingest raw tables from a folder: all checked first, then each file replaced atomically."""
    from features.quality import ingest as ingest_files
    from telcoml.pipeline import write_quality_report

    settings = _settings(workdir)
    report = ingest_files(source, settings.raw_dir)
    write_quality_report(settings, report, "raw")
    _print_quality(report)


@app.command()
@user_errors
def quality(workdir: Workdir = None) -> None:
    """Check the raw tables on the four quality dimensions; exit 1 on rejections."""
    from telcoml.pipeline import quality_stage

    report = quality_stage(_settings(workdir))
    _print_quality(report)
    if not report.passed:
        raise typer.Exit(1)


@app.command()
@user_errors
def build(workdir: Workdir = None) -> None:
    """Compute every indicator per customer per month into the offline store."""
    from telcoml.pipeline import indicator_stage

    with _bars() as bars:
        rows, problems = indicator_stage(_settings(workdir), progress=bars)
    console.print(f"indicators: {rows:,} customer-months written")
    for p in problems:
        console.print(f"  [yellow]{p}[/]")


@app.command()
@user_errors
def materialize(workdir: Workdir = None, online_store: OnlineStore = None,
                month: Annotated[Optional[str], typer.Option(help="Snapshot month (default: the latest).")] = None) -> None:
    """Register the Feast repository and load a snapshot into the online store."""
    from telcoml.pipeline import feature_store_stage

    loaded = feature_store_stage(_settings(workdir, online_store), month)
    console.print(f"online store loaded with the {loaded} snapshot; prepared answers from before are no longer "
                  "served: run `telcoml prepare`")


@app.command()
@user_errors
def customer(msisdn: str, workdir: Workdir = None, online_store: OnlineStore = None) -> None:
    """Show one customer's unified view from the online store."""
    from telcoml.pipeline import unified_view

    _print_view(msisdn, unified_view(_settings(workdir, online_store), msisdn))


def _print_view(msisdn: str, view) -> None:
    from core.msisdn import mask_msisdn

    table = Table(title=f"Customer {mask_msisdn(msisdn)}: unified view (online store)")
    for col in ("indicator", "指标", "value", "unit", "credit spec"):
        table.add_column(col, justify="right" if col == "value" else "left")
    subject = None
    for row in view.itertuples():
        if subject is not None and row.subject != subject:
            table.add_section()
        subject = row.subject
        value = "—" if row.value is None or row.value != row.value else (
            f"{row.value:,.2f}" if isinstance(row.value, float) else str(row.value))
        table.add_row(row.name_en, row.name_zh, value, row.unit, row.credit)
    console.print(table)


_SHORT = {"quadratic_weighted_kappa": "QWK", "spearman": "Spearman", "roc_auc": "AUC", "top1_accuracy": "top-1"}


def _print_quality_table(results) -> None:
    from training.train import quality_table

    frame = quality_table(results)
    table = Table(title="Model quality, held-out month (ratio = model / oracle)")
    for col in ("task", "metric", "model", "oracle", "ratio", "business view", "gate"):
        table.add_column(col, justify="right" if col in ("model", "oracle", "ratio") else "left")
    for row in frame.itertuples():
        name = row.task if row.province == "all" else f"{row.task} ({row.province})"
        gate = f"v{row.version} " + ("champion" if row.champion == "promoted" else "refused")
        table.add_row(name, _SHORT.get(row.metric, row.metric), f"{row.model:.3f}", f"{row.oracle:.3f}",
                      f"{row.ratio:.3f}", row.extra, gate)
    console.print(table)


@app.command()
@user_errors
def train(
    task: Annotated[str, typer.Option("--task", "-t", help="A task name, or 'all'.")] = "all",
    trials: Annotated[int, typer.Option(help="Optuna trials per task.")] = 20,
    timeout: Annotated[Optional[float], typer.Option(help="Seconds of tuning per task.")] = None,
    province: Annotated[Optional[str], typer.Option(help="Train on one province's customers (e.g. GD).")] = None,
    seed: int = 7,
    test_month: Annotated[Optional[str], typer.Option(help="Held-out month (default: the second-to-last).")] = None,
    train_months: Annotated[int, typer.Option(help="Months before the validation month to train on.")] = 4,
    workdir: Workdir = None,
) -> None:
    """Tune, train, evaluate against the oracle, register, and gate the champion."""
    from training.tasks import task as lookup
    from training.train import train_all
    from training.tune import TuningBudget

    names = None if task == "all" else [lookup(task).name]  # all: every task with labels
    budget = TuningBudget(trials=trials, timeout_seconds=timeout, seed=seed)
    with _bars() as bars:
        results = train_all(_settings(workdir), province.upper() if province else None, budget, names,
                            progress=lambda name, total: bars(name, total),
                            test_month=test_month, train_months=train_months)
    _print_quality_table(results)


@app.command("batch-score")
@user_errors
def batch_score(
    province: Annotated[str, typer.Option(help="Province whose customers to score (e.g. GD).")],
    month: Annotated[Optional[str], typer.Option(help="Snapshot month (default: the latest).")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Customers per chunk (bounds memory).")] = 200_000,
    workdir: Workdir = None,
) -> None:
    """Score every customer of a province into the CRM interface file (Parquet and CSV)."""
    from serving.batch import score_province
    from serving.scoring import load_champions

    settings = _settings(workdir)
    models = load_champions(settings)
    # one thread per model: on 2 shared cores OpenMP contention halved the rate (benchmarks/README.md)
    with _bars() as bars:
        result = score_province(settings, models, province, month, chunk_rows,
                                progress=bars(f"score {province.upper()}", None))
    console.print(f"{result.rows:,} customers of {result.province} ({result.month}) in {result.seconds:.1f}s "
                  f"({result.rows / max(result.seconds, 1e-9):,.0f}/s) -> {result.parquet}, {result.csv}")


@app.command()
@user_errors
def prepare(
    province: Annotated[Optional[list[str]], typer.Option(help="Only these provinces (repeatable).")] = None,
    workdir: Workdir = None, online_store: OnlineStore = None,
) -> None:
    """Prepare every customer's /score answer for the current indicators and champions.

    Run after each materialization and each change of champions (then /reload the
    service): until then, calls are scored live.
    """
    from serving.prepared import prepare_answers
    from serving.scoring import load_champions, with_threads

    settings = _settings(workdir, online_store)
    models = with_threads(load_champions(settings), 0)  # TreeSHAP is most of the work: every core
    with _bars() as bars:
        result = prepare_answers(settings, models, province,
                                 progress=lambda p, n: bars(f"prepare {p}", n))
    console.print(f"{result.answers:,} answers prepared for {', '.join(result.provinces)} in {result.seconds:.0f}s "
                  f"({result.answers / max(result.seconds, 1e-9):,.0f}/s) into the {settings.online_store} online store")


@app.command()
@user_errors
def byod(
    mapping: Annotated[Path, typer.Argument(help="Mapping YAML: source (CSV/Parquet files or SQL), columns -> "
                                                 "indicators, label columns -> models.")],
    train: Annotated[bool, typer.Option("--train", help="Then train the models whose labels the data has.")] = False,
    trials: Annotated[int, typer.Option(help="Optuna trials per model (with --train).")] = 10,
    seed: int = 7,
    workdir: Workdir = None,
    online_store: OnlineStore = None,
) -> None:
    """Bring your own data: check a province's customer table, build its feature store, optionally train."""
    from features.byod import run_byod
    from telcoml.pipeline import write_quality_report

    settings = _settings(workdir, online_store)
    with console.status("quality gate, offline store, feast apply + materialize"):
        result = run_byod(settings, mapping)
    write_quality_report(settings, result.report, f"byod_{result.province}")
    console.print(f"{result.province}: {result.rows:,} customer-months ({result.customers:,} customers, "
                  f"{result.months[0]} to {result.months[-1]}) passed the gate; {result.offline_files} offline files; "
                  f"{result.months[-1]} online")
    for p in result.report.warnings[:10]:
        console.print(f"  [yellow]warn[/] {p}")
    console.print("labels for: " + (", ".join(result.models_labelled) or "none (nothing to train)"))
    if train and result.models_labelled:
        from training.train import train_all
        from training.tune import TuningBudget

        with _bars() as bars:
            results = train_all(settings, result.province, TuningBudget(trials=trials, seed=seed),
                                result.models_labelled, progress=lambda name, total: bars(name, total))
        _print_quality_table(results)


keys_app = typer.Typer(help="API keys for the CRM endpoints (stored hashed, scoped by province).")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@user_errors
def keys_create(name: str, province: Annotated[str, typer.Option(help="Province code, or * for all.")] = "*",
                workdir: Workdir = None) -> None:
    """Create a named key; the plain key is printed once and only its hash is stored."""
    from serving.security import create_key

    key = create_key(_settings(workdir), name, province)
    console.print(f"TELCOML_API_KEY={key}")


@app.command()
@user_errors
def serve(workdir: Workdir = None, port: int = 3000, host: str = "127.0.0.1", online_store: OnlineStore = None,
          workers: Annotated[int, typer.Option(help="Worker processes; each loads the champions.")] = 1) -> None:
    """Start the BentoML prediction service on the champions of the registry."""
    import os
    import subprocess
    import sys

    settings = _settings(workdir, online_store)
    env = {**os.environ, "TELCOML_WORKDIR": str(settings.workdir.resolve()),
           "TELCOML_ONLINE_STORE": settings.online_store, "TELCOML_REDIS_URL": settings.redis_url,
           "TELCOML_SERVE_WORKERS": str(workers)}  # read by @bentoml.service(workers=...)
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:TelcomlService",
               "--host", host, "--port", str(port)]
    console.print(f"serving {settings.workdir} on http://{host}:{port} (OpenAPI: /docs.json, Swagger UI: /)")
    raise typer.Exit(subprocess.call(command, env=env, cwd=Path(__file__).resolve().parent.parent))


@app.command()
@user_errors
def indicators(task: Annotated[Optional[str], typer.Option(help="Only the indicators of this task.")] = None,
               province: Annotated[Optional[str], typer.Option(help="A province's effective set (its file in "
                                                                "the provinces directory), e.g. GD.")] = None,
               workdir: Workdir = None) -> None:
    """List the indicator library, or a province's effective set: names, definitions, units and roles."""
    if province:
        return _print_province_indicators(_settings(workdir), province, task)
    chosen = lib.for_task(task) if task else list(lib.CATALOGUE)
    table = Table(title="Indicator library" + (f" — {task}" if task else ""))
    for col in ("id", "指标", "name", "definition", "unit", "range", "credit spec"):
        table.add_column(col, overflow="fold")
    for i in chosen:
        table.add_row(i.id, i.name_zh, i.name_en, i.formula, i.unit, _range(i), i.credit_role or "")
    console.print(table)


def _range(i) -> str:
    return ", ".join(i.codes) if i.codes else (f"{i.valid_range[0]:g}–{i.valid_range[1]:g}" if i.valid_range else "")


def _print_province_indicators(settings: Settings, code: str, task: str | None) -> None:
    from features.provinces import require_province

    config = require_province(settings, code)
    chosen = config.effective_indicators(task) if task else config.all_indicators()
    table = Table(title=f"Indicators of province {config.province} {config.name_zh}" + (f" — {task}" if task else ""))
    for col in ("id", "指标", "name", "definition", "unit", "range", "role", "used by"):
        table.add_column(col, overflow="fold")
    used = {e: {i.id for i in config.effective_indicators(e)} for e in lib.TASKS}
    for i in chosen:
        role = i.credit_role or ("custom" if i.id not in lib.BY_ID else "")
        table.add_row(i.id, i.name_zh, i.name_en, i.definition if role == "custom" else i.formula, i.unit, _range(i),
                      "optional (chosen)" if role == "optional" else role,
                      ", ".join(e for e in lib.TASKS if i.id in used[e]))
    console.print(table)
    dropped = [lib.BY_ID[d] for d in sorted(config.dropped)]
    if dropped:
        console.print("not used by this province: " + ", ".join(f"{i.id} ({i.name_zh})" for i in dropped))


province_app = typer.Typer(help="Province files: each province's choice of indicators, grades, guidance, drift.")
app.add_typer(province_app, name="province")


@province_app.command("validate")
@user_errors
def province_validate(code: Annotated[Optional[str], typer.Argument(help="Province code; all files if omitted.")] = None,
                      workdir: Workdir = None) -> None:
    """Check a province file (or every one): errors name the file and line."""
    from features.provinces import load_provinces, require_province
    from features.repo import service_name

    settings = _settings(workdir)
    configs = [require_province(settings, code)] if code else load_provinces(settings)
    if not configs:
        raise TelcomlError(f"no province files in {settings.provinces_dir}")
    for config in configs:
        custom = ", ".join(c.id for c in config.custom_indicators) or "none"
        console.print(f"[green]ok[/] {config.province}: optional {', '.join(config.optional_indicators) or 'none'}; "
                      f"custom {custom}; services "
                      + ", ".join(service_name(e, config.province) for e in lib.TASKS))


def _print_week(result) -> None:
    table = Table(title=f"Weekly monitoring {result.week}")
    frame = result.table().drop(columns=["top_moved"], errors="ignore")  # the alerts below name them
    for col in frame.columns:
        table.add_column(col, overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[f"[red]{v}[/]" if v == "ALERT" else str(v) for v in row])
    console.print(table)
    for alert in result.alerts:
        moved = ", ".join(f"{m['indicator']} {m['change']}" for m in alert["moved_indicators"][:3])
        console.print(f"[red]ALERT[/] {alert['province']} {alert['task']}: "
                      + ", ".join(f"{b['check']} {b['value']} ≥ {b['threshold']}" for b in alert["breaches"])
                      + f"; moved: {moved or '—'}")
    if result.alerts:
        console.print("action: retrain the alerted models (`telcoml train --task X`); the champion/challenger gate "
                      "decides, then `POST /reload` and `telcoml prepare`. Details per alert: alerts.json")
    for skipped in result.skipped:
        console.print(f"skipped: {skipped}")
    console.print(f"reports: {result.report_dir} (summary.md, <province>/<task>.html)")


@app.command()
@user_errors
def monitor(
    week: Annotated[Optional[str], typer.Option(help="ISO week, e.g. 2026-W44 (default: last week).")] = None,
    since: Annotated[Optional[str], typer.Option("--from", help="Backfill: every week from this one to --week.")] = None,
    province: Annotated[Optional[list[str]], typer.Option(help="Only these provinces (repeatable).")] = None,
    task: Annotated[Optional[list[str]], typer.Option(help="Only these tasks (repeatable).")] = None,
    workdir: Workdir = None,
) -> None:
    """Weekly drift and data-quality reports against each champion; exit 3 when an alert is raised."""
    from datetime import datetime, timedelta, timezone

    from monitoring.record import iso_week, recorded_weeks
    from monitoring.weekly import ALERT_EXIT_CODE, monitor_week, monitoring_dir, weeks_between

    settings = _settings(workdir)
    week = week or iso_week(datetime.now(timezone.utc) - timedelta(days=7))
    weeks = weeks_between(since, week) if since else [week]
    if since:
        have = set(recorded_weeks(settings))
        skipped = [w for w in weeks if w not in have]
        weeks = [w for w in weeks if w in have]
        if skipped:
            console.print(f"no records, skipped: {', '.join(skipped)}")
        if not weeks:
            raise TelcomlError(f"no scores recorded in any week from {since} to {week}")
    alerts = 0
    for w in weeks:
        with console.status(f"monitoring {w}") as status:
            result = monitor_week(settings, w, province, task, progress=lambda what: status.update(f"{w}: {what}"))
        _print_week(result)
        alerts += len(result.alerts)
    console.print(f"Evidently UI: evidently ui --workspace {monitoring_dir(settings) / 'workspace'} --port 8000")
    if alerts:
        raise typer.Exit(ALERT_EXIT_CODE)


@app.command()
@user_errors
def replay(
    month: Annotated[str, typer.Option(help="Snapshot month to replay, e.g. 2026-10.")],
    province: Annotated[Optional[list[str]], typer.Option(help="Only these provinces (repeatable).")] = None,
    workdir: Workdir = None,
) -> None:
    """Backfill monitoring history: score a past snapshot into the records of the week it went live."""
    from monitoring.weekly import replay_month

    settings = _settings(workdir)
    with _bars() as bars:
        advance: dict = {}

        def progress(p: str, n: int) -> None:  # a bar per province, opened when its scoring starts
            if p not in advance:
                advance[p] = bars(f"replay {p}", None)
            advance[p](n)

        week = replay_month(settings, month, [p.upper() for p in province] if province else None, progress)
    console.print(f"{month} snapshot recorded under week {week}: run `telcoml monitor --week {week}`")


@app.command()
@user_errors
def demo(
    workdir: Workdir = None,
    customers: Annotated[int, typer.Option(help="Subscribers across all provinces.")] = 20_000,
    months: int = 12,
    seed: int = 7,
    trials: Annotated[int, typer.Option(help="Optuna trials per task (a small budget for the demo).")] = 5,
    online_store: OnlineStore = None,
) -> None:
    """The main job on embedded defaults: generate, gate, indicators, Feast, train all tasks."""
    from telcoml import pipeline

    settings = _settings(workdir, online_store)
    console.rule(f"telcoml demo in {settings.workdir}")
    started = time.perf_counter()
    config = _generator_config(customers, months, "2025-11", seed, "2026-10", "GD,SC,HE,ZJ")
    with _bars() as bars:
        report = pipeline.generate_stage(settings, config, progress=bars)
        rows, problems = pipeline.indicator_stage(settings, progress=bars)
    _print_quality(report)
    console.print(f"indicators: {rows:,} customer-months; {len(problems)} indicator warnings")
    with console.status("feast apply + materialize"):
        month = pipeline.feature_store_stage(settings)
    console.print(f"feature store: repository applied, {month} snapshot online ({settings.online_store})")
    msisdn = pipeline.sample_customer(settings)
    _print_view(msisdn, pipeline.unified_view(settings, msisdn))

    from training.train import train_all
    from training.tune import TuningBudget

    with _bars() as bars:
        results = train_all(settings, None, TuningBudget(trials=trials, seed=seed),
                            progress=lambda name, total: bars(name, total))
    _print_quality_table(results)

    from serving.prepared import prepare_answers
    from serving.scoring import load_champions, with_threads

    with _bars() as bars:
        prepared = prepare_answers(settings, with_threads(load_champions(settings), 0),
                                   progress=lambda p, n: bars(f"prepare {p}", n))
    console.print(f"prepared answers: {prepared.answers:,} customers in {prepared.seconds:.0f}s "
                  "(/score answers them with one lookup; everyone else is scored live)")

    from serving.security import create_key

    key = create_key(settings, "demo")
    key_file = settings.workdir / "serving" / "demo_api_key.env"
    key_file.write_text(f"TELCOML_API_KEY={key}\n")
    key_file.chmod(0o600)
    from monitoring.weekly import monitor_week, monitoring_dir, replay_month

    with console.status(f"weekly monitoring: replaying the {month} snapshot into the week it went live"):
        week = replay_month(settings, month)
        weekly = monitor_week(settings, week)
    _print_week(weekly)
    console.print(f"demo finished in {time.perf_counter() - started:.0f}s. Next:")
    console.print(f"  evidently ui --workspace {monitoring_dir(settings) / 'workspace'} --port 8000   "
                  f"(weekly reports; also {weekly.report_dir / 'summary.md'})")
    console.print(f"  telcoml serve --workdir {settings.workdir} --port 3000")
    console.print(f"  TELCOML_API_KEY={key}   (also in {key_file})")
    console.print(f"  curl -s -X POST http://127.0.0.1:3000/score -H \"X-API-Key: $TELCOML_API_KEY\" "
                  f"-H 'Content-Type: application/json' -d '{{\"msisdn\": \"{msisdn}\"}}'")
    console.print(f"  mlflow ui --backend-store-uri {settings.tracking_uri}")


if __name__ == "__main__":
    app()
