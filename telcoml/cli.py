"""The ``telcoml`` command line: one entry point, a subcommand per stage.

The CLI parses options and prints results; the stages and their composition live in
``telcoml.pipeline``, whose functions return result objects. Heavy modules are imported
inside the commands, so ``telcoml --help`` starts fast.

Errors a user can meet (``TelcomlError``) print as one clear message on stderr and exit 1;
no traceback. Listing commands take ``--format json|csv`` for scripts: only the data on
stdout, messages on stderr. Libraries' deprecation and serialization notices are kept off
the terminal (``quiet_libraries``); ``PYTHONWARNINGS=default telcoml ...`` shows them again.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import json
import logging
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core import names
from core.errors import TelcomlError

if TYPE_CHECKING:
    from core.settings import Settings
    from telcoml.pipeline import (
        ByodRunResult,
        ByodStage,
        DemoResult,
        DemoStage,
        MonitorRunResult,
        MonitorStage,
    )

app = typer.Typer(
    help="telcoml: customer evaluations for customer service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
#: Columns when the output is a file or a pipe (a log, CI) and ``COLUMNS`` is not set: rich's
#: 80 squeezes the summary tables (the demo's ten columns) into a letter per line.
LOG_COLUMNS = 160


def _console(stderr: bool = False) -> Console:
    """A rich console: a terminal's own width, ``COLUMNS`` where set, else ``LOG_COLUMNS``."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, width=LOG_COLUMNS if piped else None)


console = _console()
#: messages that are not the command's data: errors, and notes beside --format json/csv
err_console = _console(stderr=True)

Workdir = Annotated[
    Path | None,
    typer.Option("--workdir", "-w", help="Work directory (default: $TELCOML_WORKDIR or ./telcoml-work)."),
]


def _choices(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    """Options with a fixed set of values are enums: ``--help`` and shell completion list them, and a
    wrong value is refused (exit 2) naming them. The names come from ``core.names``, which imports
    nothing, so starting the command line (each TAB) stays fast."""
    return StrEnum(name, {v: v for v in values})


TaskName = _choices("TaskName", (*names.TASKS, "all"))
Evaluation = _choices("Evaluation", names.EVALUATIONS)
ProvinceCode = _choices("ProvinceCode", names.PROVINCES)
KeyScope = _choices("KeyScope", (*names.PROVINCES, names.ALL_PROVINCES))
CampaignPurpose = _choices("CampaignPurpose", names.CAMPAIGN_PURPOSES)
OnlineStoreName = _choices("OnlineStoreName", names.ONLINE_STORES)
OnlineStore = Annotated[
    OnlineStoreName | None, typer.Option("--online-store", help="The online store (default: sqlite).")
]
#: Province options and arguments accept gd as GD.
Provinces = Annotated[
    list[ProvinceCode] | None, typer.Option(case_sensitive=False, help="Only these provinces (repeatable).")
]


def _day(text: str) -> dt.date:
    """A date option's value (``--start``, ``--as-of``, ``--expires``): YYYY-MM-DD, or a usage
    error (exit 2) naming the option."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-07-01 (YYYY-MM-DD)") from None


def _day_option(help_text: str) -> Any:
    return typer.Option(parser=_day, metavar="YYYY-MM-DD", help=help_text)


def _chosen(value: StrEnum | list[StrEnum] | None) -> str | list[str] | None:
    """A choice option's value as the plain string (or strings) the stages take."""
    if isinstance(value, list):
        return [v.value for v in value]
    return None if value is None else value.value


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class CreditMethod(StrEnum):
    """``training.train_all.CREDIT_METHODS``."""

    both = "both"
    scorecard = "scorecard"
    supervised = "supervised"


Format = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="table for people; json (an array of objects) or csv (header and rows) for scripts: "
        "only the data on stdout, messages on stderr.",
    ),
]


# --- start-up: keep libraries' notices off the user's terminal ------------------------------------

#: Library warnings a user of the CLI cannot act on, as (category, start of the message; "" for any).
QUIET_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # libraries announcing their own API changes: SQLAlchemy's SADeprecationWarning (MLflow's store),
    # pydantic's PydanticDeprecatedSince* and Litestar's LitestarDeprecationWarning (BentoML),
    # ibis/DuckDB's fetch_arrow_table (Feast's offline store), numpy.core and escape sequences (Evidently)
    (DeprecationWarning, ""),
    (PendingDeprecationWarning, ""),  # matplotlib colormap methods shap's plots call
    (FutureWarning, ""),  # pandas, scikit-learn and XGBoost announcing changes of their defaults
    # MLflow inferring a model signature from the input example: the example's integer columns are
    # declared as doubles on purpose (training.train), the hint is about its own inference
    (UserWarning, r"Hint: Inferred schema contains integer column"),
)

#: MLflow's log notices when a model is saved, about its serialization: (logger, start of the message).
QUIET_LOG_MESSAGES: tuple[tuple[str, str], ...] = (
    # every pyfunc model is a Python object (training.registry): pickled with CloudPickle by design
    (
        "mlflow.pyfunc",
        "Passing a Python object as `python_model` causes it to be serialized using CloudPickle",
    ),
    # the model's conda.yaml lists pip without a version: uv-made virtualenvs have no pip
    ("mlflow.utils.environment", "Failed to resolve installed pip version"),
)


def _quiet(category: type[Warning], message: str) -> bool:
    return any(
        issubclass(category, quiet) and re.match(pattern, message, re.IGNORECASE)
        for quiet, pattern in QUIET_WARNINGS
    )


class _DropMessages(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def quiet_libraries() -> None:
    """Keep third-party deprecation and serialization notices off the terminal; the project's own
    messages and every other library warning stay visible.

    Warnings: ``warnings.filterwarnings`` for ``QUIET_WARNINGS``, and the same rules where warnings
    are shown, because Feast re-enables DeprecationWarning when it is imported
    (``warnings.simplefilter("once", DeprecationWarning)`` ahead of these filters). Skipped when
    Python was asked for warnings (``-W`` or ``PYTHONWARNINGS``). Logs: MLflow's logger at
    WARNING (``MLFLOW_LOGGING_LEVEL``, unless set) and its serialization notices dropped, and its
    links printed per run against a tracking server; xgboost.spark's at WARNING unless set.
    """
    if not sys.warnoptions:
        for category, message in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        shown = warnings.showwarning
        if not getattr(shown, "telcoml_quiet", False):

            def showwarning(message, category, filename, lineno, file=None, line=None):
                if not _quiet(category, str(message)):
                    shown(message, category, filename, lineno, file, line)

            showwarning.telcoml_quiet = True
            warnings.showwarning = showwarning
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # its INFO lines: registry and run chatter
    # a tracking server's "View run ... at" two lines per run and trial (the CLI prints its own summary)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    spark_fit = logging.getLogger("XGBoost-PySpark")  # xgboost.spark's fit parameters at INFO, per fit
    if spark_fit.level == logging.NOTSET:  # (its workers take the driver's level)
        spark_fit.setLevel(logging.WARNING)
    for name, start in QUIET_LOG_MESSAGES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) and f.start == start for f in logger.filters):
            logger.addFilter(_DropMessages(start))


@app.callback()
def main() -> None:
    """telcoml: customer evaluations for customer service."""
    quiet_libraries()


# --- shared helpers -------------------------------------------------------------------------------


def _settings(workdir: Path | None, online_store: OnlineStoreName | None = None) -> Settings:
    from core.settings import get_settings

    return get_settings(workdir=workdir, online_store=_chosen(online_store))


def user_errors(func):
    """Turn the project's own errors into a clear message on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TelcomlError as err:
            err_console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


class _Screen:
    """Bars and spinners of a running job, with each stage's result printed as it completes.

    A stage's bars stay where they were drawn: they stop before anything else is shown.
    """

    def __init__(self) -> None:
        self._bars: Progress | None = None

    def __enter__(self) -> _Screen:
        return self

    def __exit__(self, *_exc) -> None:
        self.settle()

    def bars(self, description: str, total: int | None, _unit: int = 0) -> Callable[[int], None]:
        """A bar per stage (``telcoml.pipeline.Progress``); returns its ``advance(n)``."""
        if self._bars is None:
            self._bars = Progress(
                TextColumn("{task.description:<12}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._bars.start()
        bars = self._bars
        task = bars.add_task(description, total=total)
        return lambda n=1: bars.advance(task, n)

    def settle(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    @contextlib.contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        """A spinner for a step without a count (``telcoml.pipeline.Status``)."""
        self.settle()
        with console.status(text) as spinner:
            yield spinner.update

    def then(self, show: Callable[..., None]) -> Callable[..., None]:
        """``show`` a stage's result below the bars drawn so far."""

        def call(*args) -> None:
            self.settle()
            show(*args)

        return call


@contextlib.contextmanager
def _bars():
    """Progress bars for long steps; the pipeline asks for one bar per stage."""
    with _Screen() as screen:
        yield screen.bars


def _plain(value: Any) -> Any:
    """A value as JSON has it: numpy scalars as Python numbers, NaN as null."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _emit(records: list[dict[str, Any]], columns: list[str], fmt: OutputFormat) -> None:
    """Rows for scripts on stdout: a JSON array of objects, or CSV with a header (lists joined by ', ')."""
    if fmt is OutputFormat.json:
        data = [{c: _plain(r.get(c)) for c in columns} for r in records]
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow(
            [
                ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else "" if v is None else v
                for v in (_plain(r.get(c)) for c in columns)
            ]
        )


def _name_column(table: Table, header: str, names: list[str]) -> None:
    """A column of Chinese indicator names: never wrapped over two lines, never cut."""
    table.add_column(header, no_wrap=True, min_width=max([cell_len(header), *map(cell_len, names)]))


def _generator_config(
    customers: int, months: int, start_month: str, seed: int, drift_month: str | None, provinces: str
):
    from features.generate import GeneratorConfig

    return GeneratorConfig(
        customers=customers,
        months=months,
        start_month=start_month,
        seed=seed,
        drift_month=drift_month or None,
        provinces=tuple(p.strip().upper() for p in provinces.split(",") if p.strip()),
    )


#: Kinds of quality problem printed after the gate's table (the report holds them all).
QUALITY_LINES = 10


def _print_quality(report, settings: Settings) -> None:
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
    # one line per kind of problem (the same check of the same column), rejects first: a check
    # that warns in every month of a province is one line, not twelve
    kinds: dict[tuple, list] = {}
    for p in report.problems:
        kinds.setdefault((p.severity, p.dimension, p.table, p.column), []).append(p)
    for problems in list(kinds.values())[:QUALITY_LINES]:
        p, more = problems[0], len(problems) - 1
        also = f" [dim](and {more} more partition{'s' if more > 1 else ''} like it)[/]" if more else ""
        console.print(f"  [{'red' if p.severity == 'reject' else 'yellow'}]{p.severity}[/] {p}{also}")
    if len(kinds) > QUALITY_LINES:
        console.print(f"  [dim]… {len(kinds) - QUALITY_LINES} more kinds of problem[/]")
    if report.problems:
        from telcoml.pipeline import quality_report_path

        every = quality_report_path(settings)
        console.print(f"  [dim]{len(report.problems):,} problems in all, each in {every}[/]")


# --- the feature store ----------------------------------------------------------------------------


@app.command()
@user_errors
def generate(
    workdir: Workdir = None,
    customers: Annotated[int, typer.Option(help="Subscribers across all provinces.")] = 10_000,
    months: Annotated[int, typer.Option(help="Months of history.")] = 12,
    start_month: Annotated[str, typer.Option(help="First month, YYYY-MM.")] = "2025-11",
    seed: int = 7,
    drift_month: Annotated[
        str, typer.Option(help="Month the world changes (tariff change, competitor offer); '' for none.")
    ] = "2026-10",
    provinces: Annotated[str, typer.Option(help="Comma-separated province codes.")] = "GD,SC,HE,ZJ",
    chunk_customers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="A province larger than this is simulated in chunks of at most this many first lines "
            "(memory holds one chunk). Default: the generator's (250,000).",
        ),
    ] = None,
) -> None:
    """Generate synthetic operator data, pass it through the quality gate and publish it."""
    import dataclasses

    from telcoml.pipeline import generate_stage

    settings = _settings(workdir)
    config = _generator_config(customers, months, start_month, seed, drift_month, provinces)
    if chunk_customers is not None:
        config = dataclasses.replace(config, chunk_customers=chunk_customers)
    with _bars() as bars:
        report = generate_stage(settings, config, progress=bars)
    _print_quality(report, settings)


@app.command()
@user_errors
def ingest(
    source: Annotated[
        Path,
        typer.Argument(help="Folder laid out like raw/: <table>/province=XX[/month=YYYY-MM]/part-0.parquet"),
    ],
    workdir: Workdir = None,
) -> None:
    """Ingest raw tables from a folder: all checked first, then each file replaced atomically."""
    from telcoml.pipeline import ingest_stage

    settings = _settings(workdir)
    _print_quality(ingest_stage(settings, source), settings)


@app.command()
@user_errors
def quality(workdir: Workdir = None) -> None:
    """Check the raw tables on the four quality dimensions; exit 1 on rejections."""
    from telcoml.pipeline import quality_stage

    settings = _settings(workdir)
    report = quality_stage(settings)
    _print_quality(report, settings)
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
def materialize(
    workdir: Workdir = None,
    online_store: OnlineStore = None,
    month: Annotated[str | None, typer.Option(help="Snapshot month (default: the latest).")] = None,
) -> None:
    """Register the Feast repository and load a snapshot into the online store."""
    from telcoml.pipeline import feature_store_stage, prepare_in_background

    settings = _settings(workdir, online_store)
    loaded = feature_store_stage(settings, month)
    console.print(
        f"online store loaded with the {loaded} snapshot; prepared answers from before are no longer served"
    )
    _print_preparing(prepare_in_background(settings, f"materialized {loaded}"))


def _print_preparing(log_path: Path | None) -> None:
    if log_path is None:
        console.print("run `telcoml prepare` (TELCOML_AUTO_PREPARE=0: no background prepare)")
    else:
        console.print(
            f"preparing answers in the background; until done, calls are scored live (log: {log_path})"
        )


_VIEW_COLUMNS = ["subject", "indicator", "name_zh", "name_en", "value", "unit", "credit_spec"]


@app.command()
@user_errors
def customer(
    msisdn: str, workdir: Workdir = None, online_store: OnlineStore = None, fmt: Format = OutputFormat.table
) -> None:
    """Show one customer's unified view from the online store."""
    from telcoml.pipeline import unified_view

    view = unified_view(_settings(workdir, online_store), msisdn)
    if fmt is OutputFormat.table:
        return _print_view(msisdn, view)
    records = view.rename(columns={"credit": "credit_spec"}).to_dict("records")
    _emit([{**r, "credit_spec": r["credit_spec"] or None} for r in records], _VIEW_COLUMNS, fmt)


def _print_view(msisdn: str, view) -> None:
    from core.msisdn import mask_msisdn

    table = Table(title=f"Customer {mask_msisdn(msisdn)}: unified view (online store)")
    table.add_column("indicator", overflow="fold")
    _name_column(table, "指标", list(view["name_zh"]))
    table.add_column("value", justify="right", no_wrap=True)  # codes and numbers: whole or not at all
    for col in ("unit", "credit spec"):
        table.add_column(col)
    subject = None
    for row in view.itertuples():
        if subject is not None and row.subject != subject:
            table.add_section()
        subject = row.subject
        value = (
            "—"
            if row.value is None or row.value != row.value
            else (f"{row.value:,.2f}" if isinstance(row.value, float) else str(row.value))
        )
        table.add_row(row.name_en, row.name_zh, value, row.unit, row.credit)
    console.print(table)


# --- models ---------------------------------------------------------------------------------------


def _print_quality_table(results) -> None:
    from training.baselines import BASELINES
    from training.train import quality_table

    frame = quality_table(results)
    table = Table(title="Model quality on held-out customers (ratio = model / oracle)")
    numbers = ("model", *BASELINES.values(), "oracle", "ratio")
    for col in ("task", "metric", *numbers, "business view", "split", "gate"):
        table.add_column(col, justify="right" if col in numbers else "left")
    for row in frame.to_dict("records"):
        name = row["task"] + (" [scorecard]" if row["method"] == "scorecard" else "")
        name += "" if row["province"] == "all" else f" ({row['province']})"
        gate = f"v{row['version']} " + ("champion" if row["champion"] == "promoted" else row["champion"])
        table.add_row(
            name,
            row["metric_label"],
            *(f"{row[c]:.3f}" for c in numbers),
            row["extra"],
            row["split"],
            gate,
        )
    console.print(table)


@app.command()
@user_errors
def train(
    task: Annotated[TaskName, typer.Option("--task", "-t", help="A task, or all.")] = TaskName("all"),
    trials: Annotated[
        int | None,
        typer.Option(
            help="Optuna trials per task (default: 20, or 40 for a table under 5,000 training rows)."
        ),
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds of tuning per task.")] = None,
    province: Annotated[
        ProvinceCode | None, typer.Option(case_sensitive=False, help="Train on one province's customers.")
    ] = None,
    seed: int = 7,
    test_month: Annotated[
        str | None,
        typer.Option(
            help="Held-out month (default: the second-to-last labelled); a task whose labels end "
            "earlier (the credit outcome matures three months later) keeps its own default."
        ),
    ] = None,
    train_months: Annotated[int, typer.Option(help="Months before the validation month to train on.")] = 4,
    refit: Annotated[
        bool,
        typer.Option(help="Refit the tested settings on every labelled row of the split before serving."),
    ] = True,
    credit_method: Annotated[
        CreditMethod,
        typer.Option(
            help="Credit grade: the specification's scorecard (needs no labels), the supervised "
            "model, or both (the gate keeps the better as champion)."
        ),
    ] = CreditMethod.both,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=32,
            help="Processes tuning each study at once on this machine, sharing its trials (more "
            "than 1 needs TELCOML_OPTUNA_STORAGE=postgresql+psycopg://...; more machines: tune-worker).",
        ),
    ] = 1,
    workdir: Workdir = None,
) -> None:
    """Tune, test against the oracle and the baselines, refit, register, and gate the champion.

    Three or more labelled months split by month; fewer split by customer. The credit scorecard
    is fitted first; the supervised credit model replaces it as champion only by beating it."""
    from telcoml.pipeline import prepare_in_background, train_models

    settings = _settings(workdir)
    with _bars() as bars:  # all: every task with labels
        results = train_models(
            settings,
            None if task == "all" else [task.value],
            _chosen(province),
            trials,
            timeout,
            seed,
            progress=bars,
            test_month=test_month,
            train_months=train_months,
            refit=refit,
            credit_method=credit_method.value,
            tuning_workers=workers,
        )
    _print_quality_table(results)
    promoted = [r.task for r in results if r.promoted]
    if promoted:  # the answers' new champions: POST /reload makes the service use them
        _print_preparing(prepare_in_background(settings, f"new champions: {', '.join(promoted)}"))


@app.command("tune-worker")
@user_errors
def tune_worker(
    task: Annotated[TaskName, typer.Option("--task", "-t", help="The study's task.")],
    parent_run: Annotated[str, typer.Option(help="The lead's MLflow parent run: trial runs nest under it.")],
    share: Annotated[int, typer.Option(min=1, help="Trials this worker runs.")],
    worker: Annotated[int, typer.Option(min=1, help="This worker's number (the lead is 0).")] = 1,
    trials: Annotated[int | None, typer.Option(help="The study's whole budget, as the lead's.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds of tuning.")] = None,
    province: Annotated[ProvinceCode | None, typer.Option(case_sensitive=False)] = None,
    seed: int = 7,
    test_month: str | None = None,
    train_months: int = 4,
    max_rounds: int = 600,
    early_stopping_rounds: int = 30,
    threads: int = 2,
    sample: Annotated[
        Path | None,
        typer.Option(
            help="The lead's tuning sample (the Spark path): tune on it instead of joining the rows."
        ),
    ] = None,
    workdir: Workdir = None,
) -> None:
    """Join a study the lead (`telcoml train --workers N`) opened and run a share of its trials.

    The lead starts its helpers itself; on another machine, run this with the lead's settings
    (TELCOML_OPTUNA_STORAGE, TELCOML_MLFLOW_TRACKING_URI, the work directory) and run id."""
    from training.tune import TuningBudget
    from training.workers import TuningOrder
    from training.workers import tune_worker as run_worker

    if task == "all":
        raise typer.BadParameter("a worker tunes one task's study", param_hint="--task")
    budget = TuningBudget(trials, timeout, max_rounds, early_stopping_rounds, seed, threads)
    name = _chosen(province)
    order = TuningOrder(
        task.value,
        name.upper() if name else None,
        budget,
        test_month,
        train_months,
        parent_run,
        str(sample) if sample else None,
    )
    ran = run_worker(_settings(workdir), order, worker, share)
    console.print(f"worker {worker}: {ran} trials of {task.value}")


@app.command("batch-score")
@user_errors
def batch_score(
    province: Annotated[
        list[ProvinceCode] | None,
        typer.Option(
            case_sensitive=False,
            help="Province whose customers to score (repeatable; default: every province with a snapshot).",
        ),
    ] = None,
    month: Annotated[str | None, typer.Option(help="Snapshot month (default: the latest).")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Customers per chunk (bounds memory).")] = 200_000,
    workdir: Workdir = None,
) -> None:
    """Score every customer of a province (or of each) into the CRM interface file (Parquet and CSV)."""
    from telcoml.pipeline import batch_score_stage

    with _bars() as bars:
        results = batch_score_stage(_settings(workdir), _chosen(province), month, chunk_rows, progress=bars)
    for result in results:
        console.print(
            f"{result.rows:,} customers of {result.province} ({result.month}) in {result.seconds:.1f}s "
            f"({result.rows / max(result.seconds, 1e-9):,.0f}/s) -> {result.parquet}, {result.csv}"
        )


@app.command()
@user_errors
def retention(
    province: Annotated[
        ProvinceCode, typer.Option(case_sensitive=False, help="Province whose retention list to write.")
    ],
    month: Annotated[str | None, typer.Option(help="Snapshot month (default: the latest).")] = None,
    health_month: Annotated[
        str | None, typer.Option(help="Past list month of the health report (default: newest matured).")
    ] = None,
    workdir: Workdir = None,
) -> None:
    """Core customers kept (核心客户保有): the province's retention list, its cut-off for serving,
    and the health of a past month's warned customers (保有后健康度)."""
    from serving.champions import load_champions
    from serving.retention_list import run_retention

    settings = _settings(workdir)
    with console.status(f"retention list of {province.value}"):
        result = run_retention(settings, load_champions(settings), province.value, month, health_month)
    n = result.counts
    console.print(
        f"{result.province} {result.month}: {n['customers']:,} customers, {n['core']:,} core; warned by "
        f"thresholds {n['threshold_warned']:,}, by the composite index {n['composite_warned']:,}; "
        f"{n['on_list']:,} on the list (churn probability ≥ {result.cutoff:.4f}) -> {result.parquet}, "
        f"{result.csv}; cut-off for serving in {result.cutoff_file} (POST /reload, then `telcoml prepare`)"
    )
    if result.health is not None:
        console.print(f"health of the {result.health['list_month']} list -> {result.health_report}")
        for g in result.health["groups"]:
            share = "-" if g["retained_share"] is None else f"{g['retained_share']:.1%}"
            console.print(
                f"  {g['group']}: {g['customers']:,} customers, retained {share}, bill change "
                f"{g['monthly_consumption_change_median']}, voice {g['voice_minutes_change_median']}, "
                f"data {g['data_mb_change_median']} (medians of the retained)"
            )
    for note in result.notes:
        console.print(note)


campaign_app = typer.Typer(help="Campaigns out (客服营销服务流程): targets, suppression, waves, export.")
app.add_typer(campaign_app, name="campaign")


@campaign_app.command("plan")
@user_errors
def campaign_plan(
    definition: Annotated[Path | None, typer.Argument(help="The campaign's YAML file.")] = None,
    name: Annotated[str | None, typer.Option(help="Campaign name (replaces the file's).")] = None,
    purpose: Annotated[CampaignPurpose | None, typer.Option(help="What the campaign is for.")] = None,
    province: Annotated[
        ProvinceCode | None, typer.Option(case_sensitive=False, help="Province of the campaign.")
    ] = None,
    start: Annotated[dt.date | None, _day_option("Date of wave 1.")] = None,
    offer_en: Annotated[str | None, typer.Option(help="The offer, in English.")] = None,
    offer_zh: Annotated[str | None, typer.Option(help="The offer, in Chinese.")] = None,
    contact_cap: Annotated[int | None, typer.Option(help="Most contacts per customer in 90 days.")] = None,
    control_share: Annotated[float | None, typer.Option(help="Random hold-out share, 0-0.5.")] = None,
    export: Annotated[bool, typer.Option(help="Write the list, suppressed and control files.")] = False,
    output_dir: Annotated[Path | None, typer.Option(help="Default: <workdir>/campaigns/<name>.")] = None,
    workdir: Workdir = None,
) -> None:
    """Preview a campaign on its province's latest snapshot: who is selected, suppressed (and why),
    held out as control and contacted; ``--export`` writes the outbound system's files."""
    from serving.campaign_config import campaign_of, read_campaign
    from serving.campaign_run import run_campaign
    from serving.champions import load_champions

    given = {"name": name, "purpose": _chosen(purpose), "province": _chosen(province), "start": start}
    given |= {"contact_cap": contact_cap, "control_share": control_share}
    offer = {k: v for k, v in (("en", offer_en), ("zh", offer_zh)) if v is not None}
    overrides = {k: v for k, v in given.items() if v is not None} | ({"offer": offer} if offer else {})
    campaign = read_campaign(definition, overrides) if definition else campaign_of(overrides)
    settings = _settings(workdir)
    with console.status(f"campaign {campaign.name} on {campaign.province}"):
        result = run_campaign(
            settings, load_champions(settings), campaign, export=export, output_dir=output_dir
        )
    _print_campaign(result.preview)
    for label, path in result.files.items():
        console.print(f"{label}: {path}")


@campaign_app.command("simulate")
@user_errors
def campaign_simulate(
    name: Annotated[str, typer.Argument(help="An exported campaign's name.")],
    seed: Annotated[int, typer.Option(help="Seed of the world's answers.")] = 0,
    workdir: Workdir = None,
) -> None:
    """Synthetic world only: its customers answer the exported campaign by their hidden truth; the
    answers go into the feedback store as the CRM's nightly file would."""
    from serving.campaign_report import simulate_campaign

    with console.status(f"the synthetic world answers campaign {name}"):
        path, result = simulate_campaign(_settings(workdir), name, seed)
    console.print(f"{path}: {result['stored']:,} stored, {result['duplicate']:,} duplicate")


@campaign_app.command("wave")
@user_errors
def campaign_wave(
    name: Annotated[str, typer.Argument(help="An exported campaign's name.")],
    wave: Annotated[
        int, typer.Argument(help="The wave to send (2 or later: the earlier waves' answers decide).")
    ],
    workdir: Workdir = None,
) -> None:
    """The outbound list of a later wave: the customers whose earlier waves drew no closing answer
    (accepted, declined, complained, opted out) and who did not take the offer or ask not to be
    disturbed since."""
    from serving.campaign_report import wave_list

    path, rows = wave_list(_settings(workdir), name, wave)
    console.print(f"wave {wave} of {name}: {rows:,} customers still due -> {path}")


@campaign_app.command("report")
@user_errors
def campaign_report(
    name: Annotated[str, typer.Argument(help="An exported campaign's name.")],
    as_of: Annotated[dt.date | None, _day_option("Count waves due by this day (default: today).")] = None,
    mlflow_run: Annotated[bool, typer.Option(help="Also log the report as an MLflow run.")] = True,
    workdir: Workdir = None,
) -> None:
    """Response management: take-up of the contacted against the control group (uplift, 95% interval),
    answers by wave, channel and contact frequency, the best frequency; written beside the weekly
    monitoring reports and to MLflow."""
    from serving.campaign_report import report_campaign

    result = report_campaign(_settings(workdir), name, as_of, log_to_mlflow=mlflow_run)
    o, r = result.report["overall"], result.report

    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}%"

    table = Table("group", "customers", "took the offer", "rate")
    table.add_row("contacted", f"{o['contacted']:,}", f"{o['took_contacted']:,}", pct(o["rate_contacted"]))
    table.add_row("control", f"{o['control']:,}", f"{o['took_control']:,}", pct(o["rate_control"]))
    console.print(table)
    console.print(
        f"uplift {pct(o['uplift'])} (95% interval {pct(o['low'])} to {pct(o['high'])}); "
        f"best contact frequency: {r['best_contact_frequency'] or '-'} in 90 days"
    )
    if len(r["by_wave"]):
        waves = Table("wave", "attempts", "reached", "accepted", "declined", "complained", "opted out")
        for w in r["by_wave"].itertuples():
            waves.add_row(
                *(f"{v:,}" for v in (w.wave, w.attempts, w.reached, w.accepted, w.declined)),
                f"{w.complained:,}",
                f"{w.opted_out:,}",
            )
        console.print(waves)
    console.print(f"report: {result.directory / 'report.html'}")
    if result.run_id:
        console.print(f"MLflow run: {result.run_id} (experiment telcoml/campaigns)")


def _print_campaign(preview: dict) -> None:
    counts = Table(
        "campaign", "province", "month", "customers", "selected", "suppressed", "control", "to contact"
    )
    counts.add_row(
        preview["campaign"],
        preview["province"],
        preview["month"],
        f"{preview['customers']:,}",
        f"{preview['selected']:,}",
        f"{sum(preview['suppressed'].values()):,}",
        f"{preview['control']:,}",
        f"{preview['to_contact']:,}",
    )
    console.print(counts)
    reasons = Table("suppressed because", "customers")
    for reason, n in preview["suppressed"].items():
        reasons.add_row(reason, f"{n:,}")
    console.print(reasons)
    profile = Table("profile", "value", "selected", "to contact")
    for column, values in preview["profile"].items():
        for value, n in values.items():
            profile.add_row(column, value, f"{n['selected']:,}", f"{n['to_contact']:,}")
    console.print(profile)


@app.command()
@user_errors
def prepare(
    province: Provinces = None,
    workdir: Workdir = None,
    online_store: OnlineStore = None,
) -> None:
    """Prepare every customer's /score answer for the current indicators and champions.

    Run after each materialization and each change of champions (then /reload the
    service): until then, calls are scored live.
    """
    from telcoml.pipeline import prepare_stage

    settings = _settings(workdir, online_store)
    with _bars() as bars:
        result = prepare_stage(settings, _chosen(province), progress=bars)
    console.print(
        f"{result.answers:,} answers prepared for {', '.join(result.provinces)} in {result.seconds:.0f}s "
        f"({result.answers / max(result.seconds, 1e-9):,.0f}/s) into the {settings.online_store} "
        "online store"
    )


def _print_byod_stage(stage: ByodStage, run: ByodRunResult) -> None:
    if stage == "training":
        _print_quality_table(run.training)
        return
    result = run.byod
    for note in result.recovered:
        console.print(f"[yellow]{note}[/]")
    console.print(
        f"{result.province}: {result.rows:,} customer-months ({result.customers:,} customers, "
        f"{result.months[0]} to {result.months[-1]}) passed the gate; {result.offline_files} offline "
        f"files; {result.online_month or result.months[-1]} online"
    )
    if result.replaced:
        console.print(
            f"replaced {result.province}'s whole history: now {_months_text(result.months)}"
            + (f"; removed {_months_text(result.months_removed)}" if result.months_removed else "")
        )
    else:
        added = [m for m in result.months if m not in result.months_updated]
        console.print(
            f"added {_months_text(added)}; updated {_months_text(result.months_updated)}; "
            f"kept {_months_text(result.months_kept)}"
            + (" (not in the source; --replace would remove them)" if result.months_kept else "")
        )
    if result.previous is not None:
        console.print(
            f"previous generation ({result.previous_files} files replaced or removed) kept in "
            f"{result.previous}",
            soft_wrap=True,
        )
    for p in result.report.warnings[:10]:
        console.print(f"  [yellow]warn[/] {p}")
    console.print("labels for: " + (", ".join(result.models_labelled) or "none (nothing to train)"))
    for name, missing in result.models_untrainable.items():
        console.print(
            f"[yellow]not trained[/] {name}: lacks {', '.join(missing)} (its labels are stored)",
            soft_wrap=True,
        )
    if result.models_untrainable:
        console.print("can train: " + (", ".join(result.models_trainable) or "none"))


def _months_text(months: list[str]) -> str:
    """Months for a sentence: "none", "2026-03", "2026-01, 2026-02", "2026-01 to 2026-06 (6)"."""
    if not months:
        return "none"
    if len(months) <= 3:
        return ", ".join(months)
    return f"{months[0]} to {months[-1]} ({len(months)} months)"


@app.command()
@user_errors
def byod(
    mapping: Annotated[
        Path,
        typer.Argument(
            help="Mapping YAML: source (CSV/Parquet files or SQL), columns -> "
            "indicators, label columns -> models."
        ),
    ],
    train: Annotated[
        bool,
        typer.Option("--train", help="Then train the models whose labels and indicators the data has."),
    ] = False,
    trials: Annotated[
        int | None,
        typer.Option(help="Optuna trials per model (with --train; default: 20, or 40 under 5,000 rows)."),
    ] = None,
    seed: int = 7,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Make the source the province's whole history: its months not in the source are "
            "removed (default: add or update the source's months, keep the others). The files "
            "replaced are kept in offline/.previous/<PROVINCE>/.",
        ),
    ] = False,
    workdir: Workdir = None,
    online_store: OnlineStore = None,
) -> None:
    """Bring your own data: check a province's customer table, build its feature store, optionally train.

    Adds or updates the months of the source and keeps the province's others (--replace: the
    source becomes its whole history). The files a run replaces are kept as the previous
    generation, the latest three of them, in offline/.previous/<PROVINCE>/<time>/.
    """
    from telcoml.pipeline import bring_your_own_data

    with _Screen() as screen:
        bring_your_own_data(
            _settings(workdir, online_store),
            mapping,
            train,
            trials,
            screen.bars,
            seed=seed,
            status=screen.status,
            on_stage=screen.then(_print_byod_stage),
            replace=replace,
        )


keys_app = typer.Typer(help="API keys for the CRM endpoints (stored hashed, scoped by province).")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@user_errors
def keys_create(
    name: str,
    province: Annotated[
        KeyScope, typer.Option(case_sensitive=False, help="The key's province, or * for all.")
    ] = KeyScope("*"),
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, help="Refused from this many days on (default: no expiry).")
    ] = None,
    expires: Annotated[
        dt.date | None, _day_option("Last day the key works (UTC; default: no expiry).")
    ] = None,
    workdir: Workdir = None,
) -> None:
    """Create a named key; the plain key is printed once and only its hash is stored."""
    from serving.security import create_key, key_expiry

    key = create_key(_settings(workdir), name, province.value, key_expiry(expires_in_days, expires))
    console.print(f"TELCOML_API_KEY={key}")


_KEY_COLUMNS = ["name", "province", "status", "created", "expires", "last_used", "revoked"]


@keys_app.command("list")
@user_errors
def keys_list(workdir: Workdir = None, fmt: Format = OutputFormat.table) -> None:
    """Every key: name, province, status, created, expiry, last use (to the minute), revocation;
    never the key itself, which is not stored."""
    from datetime import UTC, datetime

    from serving.security import last_used, load_keys

    settings = _settings(workdir)
    now, used = datetime.now(UTC), last_used(settings)
    records = [
        {
            "name": k.name,
            "province": k.province,
            "status": k.status(now),
            "created": k.created,
            "expires": k.expires,
            "last_used": used[k.name].isoformat(timespec="seconds") if k.name in used else None,
            "revoked": k.revoked,
        }
        for k in load_keys(settings)
    ]
    if fmt is not OutputFormat.table:
        return _emit(records, _KEY_COLUMNS, fmt)
    table = Table(title="API keys (stored hashed)")
    for col in _KEY_COLUMNS:
        table.add_column(col.replace("_", " "))
    for r in records:
        table.add_row(*(r[c] or "-" for c in _KEY_COLUMNS))
    console.print(table)


@keys_app.command("revoke")
@user_errors
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name (`telcoml keys list`).")],
    workdir: Workdir = None,
) -> None:
    """Revoke a key: a running server refuses it within seconds; `keys list` still shows it."""
    from serving.security import RECHECK_SECONDS, revoke_key

    key = revoke_key(_settings(workdir), name)
    console.print(
        f"API key {key.name} ({key.province}) revoked at {key.revoked}; running servers refuse it "
        f"within {RECHECK_SECONDS:g} s"
    )


feedback_app = typer.Typer(help="Feedback from the CRM: complaint outcomes, campaign contacts, lists, DND.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("ingest")
@user_errors
def feedback_ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV or JSONL files the CRM dropped.", exists=True)],
    workdir: Workdir = None,
) -> None:
    """Store the events of each file (one file is all or nothing; an event sent before is skipped)."""
    from features.feedback import ingest_feedback_files

    for result in ingest_feedback_files(_settings(workdir).feedback_store, files):
        conflicts = (
            f", {result['conflict']} conflicting (an event id sent before with other content: not stored)"
            if result["conflict"]
            else ""
        )
        console.print(
            f"{result['file']}: {result['stored']} stored, {result['duplicate']} duplicate{conflicts}"
        )


@feedback_app.command("status")
@user_errors
def feedback_status(workdir: Workdir = None) -> None:
    """Events per type and province, how many wait to be applied, the last event's time."""
    from features.feedback import FeedbackStore

    rows = FeedbackStore(_settings(workdir).feedback_store).status()
    table = Table("event type", "province", "events", "pending", "last event")
    for row in rows:
        table.add_row(
            row["event_type"], row["province"], str(row["events"]), str(row["pending"]), row["last_event"]
        )
    console.print(table if rows else "no feedback stored yet")


@feedback_app.command("apply")
@user_errors
def feedback_apply(workdir: Workdir = None) -> None:
    """Write the pending events into the raw tables the next `telcoml build` reads (quality-gated)."""
    from features.feedback_apply import apply_feedback

    done = apply_feedback(_settings(workdir))
    rows = ", ".join(f"{n} {table}" for table, n in done.rows.items()) or "no rows"
    console.print(f"{done.applied} event(s) applied ({rows}); {done.waiting} wait for their month's delivery")


@app.command()
@user_errors
def serve(
    workdir: Workdir = None,
    port: int = 3000,
    host: str = "127.0.0.1",
    online_store: OnlineStore = None,
    workers: Annotated[int, typer.Option(help="Worker processes; each loads the champions.")] = 1,
) -> None:
    """Start the BentoML prediction service on the champions of the registry."""
    import subprocess

    settings = _settings(workdir, online_store)
    env = {
        **os.environ,
        "TELCOML_WORKDIR": str(settings.workdir.resolve()),
        "TELCOML_ONLINE_STORE": settings.online_store,
        "TELCOML_REDIS_URL": settings.redis_url,
        "TELCOML_SERVE_WORKERS": str(workers),
    }  # read by @bentoml.service(workers=...)
    if not sys.warnoptions:  # the server's processes: the same quiet as this one (quiet_libraries)
        env["PYTHONWARNINGS"] = ",".join(
            f"ignore::{c.__name__}" for c, message in QUIET_WARNINGS if not message
        )
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:TelcomlService",
        "--host",
        host,
        "--port",
        str(port),
    ]
    console.print(f"serving {settings.workdir} on http://{host}:{port} (OpenAPI: /docs.json, Swagger UI: /)")
    raise typer.Exit(subprocess.call(command, env=env, cwd=Path(__file__).resolve().parent.parent))


@app.command("console")
@user_errors
def web_console(
    workdir: Workdir = None,
    port: int = 8700,
    host: str = "127.0.0.1",
    online_store: OnlineStore = None,
    https_only: Annotated[
        bool, typer.Option(help="Mark the session cookie Secure (the console is behind TLS).")
    ] = False,
) -> None:
    """The web console (agents' customer view; sign in with an API key), on the registry's champions."""
    from serving.console.app import PATH, serve_console
    from serving.console.lookup import Backend

    settings = _settings(workdir, online_store)
    backend = Backend(settings)  # champions and stores now: a missing one is said before serving
    console.print(f"console of {settings.workdir} on http://{host}:{port}{PATH}/ (keys: telcoml keys create)")
    serve_console(settings, host, port, backend, https_only)


# --- indicators and provinces ---------------------------------------------------------------------

_LIBRARY_COLUMNS = ["id", "name_zh", "name_en", "definition", "unit", "range", "credit_spec"]
_PROVINCE_COLUMNS = ["id", "name_zh", "name_en", "definition", "unit", "range", "role", "used_by"]


@app.command()
@user_errors
def indicators(
    task: Annotated[Evaluation | None, typer.Option(help="Only the indicators of this evaluation.")] = None,
    province: Annotated[
        ProvinceCode | None,
        typer.Option(
            case_sensitive=False, help="A province's effective set (its file in the provinces directory)."
        ),
    ] = None,
    workdir: Workdir = None,
    fmt: Format = OutputFormat.table,
) -> None:
    """List the indicator library, or a province's effective set: names, definitions, units and roles."""
    from core import indicators as lib

    task = _chosen(task)
    if province:
        return _province_indicators(_settings(workdir), province.value, task, fmt)
    chosen = lib.for_task(task) if task else list(lib.CATALOGUE)
    records = [
        {
            "id": i.id,
            "name_zh": i.name_zh,
            "name_en": i.name_en,
            "definition": i.formula,
            "unit": i.unit,
            "range": _range(i) or None,
            "credit_spec": i.credit_role,
        }
        for i in chosen
    ]
    if fmt is not OutputFormat.table:
        return _emit(records, _LIBRARY_COLUMNS, fmt)
    table = Table(title="Indicator library" + (f" — {task}" if task else ""))
    table.add_column("id", overflow="fold")
    _name_column(table, "指标", [r["name_zh"] for r in records])
    for col in ("name", "definition", "unit", "range", "credit spec"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(*(r[c] or "" for c in _LIBRARY_COLUMNS))
    console.print(table)


def _range(i) -> str:
    return (
        ", ".join(i.codes)
        if i.codes
        else (f"{i.valid_range[0]:g}–{i.valid_range[1]:g}" if i.valid_range else "")
    )


def _province_indicators(settings: Settings, code: str, task: str | None, fmt: OutputFormat) -> None:
    from core import indicators as lib
    from features.provinces import require_province

    config = require_province(settings, code)
    chosen = config.effective_indicators(task) if task else config.all_indicators()
    used = {e: {i.id for i in config.effective_indicators(e)} for e in lib.EVALUATIONS}
    records = []
    for i in chosen:
        role = i.credit_role or ("custom" if i.id not in lib.BY_ID else None)
        records.append(
            {
                "id": i.id,
                "name_zh": i.name_zh,
                "name_en": i.name_en,
                "definition": i.definition if role == "custom" else i.formula,
                "unit": i.unit,
                "range": _range(i) or None,
                "role": role,
                "used_by": [e for e in lib.EVALUATIONS if i.id in used[e]],
            }
        )
    dropped = [lib.BY_ID[d] for d in sorted(config.dropped)]
    note = (
        ("not used by this province: " + ", ".join(f"{i.id} ({i.name_zh})" for i in dropped))
        if dropped
        else ""
    )
    if fmt is not OutputFormat.table:
        _emit(records, _PROVINCE_COLUMNS, fmt)
        if note:
            err_console.print(note, soft_wrap=True)
        return
    table = Table(
        title=f"Indicators of province {config.province} {config.name_zh}" + (f" — {task}" if task else "")
    )
    table.add_column("id", overflow="fold")
    _name_column(table, "指标", [r["name_zh"] for r in records])
    for col in ("name", "definition", "unit", "range", "role", "used by"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(
            r["id"],
            r["name_zh"],
            r["name_en"],
            r["definition"],
            r["unit"],
            r["range"] or "",
            "optional (chosen)" if r["role"] == "optional" else r["role"] or "",
            ", ".join(r["used_by"]),
        )
    console.print(table)
    if note:
        console.print(note)


province_app = typer.Typer(
    help="Province files: each province's choice of indicators, grades, guidance, drift."
)
app.add_typer(province_app, name="province")

_VALIDATE_COLUMNS = ["province", "optional", "custom", "models", "services", "no_model"]


@province_app.command("validate")
@user_errors
def province_validate(
    code: Annotated[
        ProvinceCode | None, typer.Argument(case_sensitive=False, help="Province; all files if omitted.")
    ] = None,
    workdir: Workdir = None,
    fmt: Format = OutputFormat.table,
) -> None:
    """Check a province file (or every one): errors name the file and line."""
    from core import indicators as lib
    from core.indicators import service_name
    from features.provinces import load_provinces, require_province

    settings = _settings(workdir)
    configs = [require_province(settings, code.value)] if code else load_provinces(settings)
    if not configs:
        raise TelcomlError(f"no province files in {settings.provinces_dir}")
    records = [
        {
            "province": c.province,
            "optional": list(c.optional_indicators),
            "custom": [i.id for i in c.custom_indicators],
            "models": [
                " ".join(
                    [f"{e}:", *(f"-{d}" for d in own.drop_indicators), *(f"+{a}" for a in own.add_indicators)]
                )
                for e in lib.EVALUATIONS
                if (own := c.models.of(e)).drop_indicators or own.add_indicators
            ],
            "services": [service_name(e, c.province) for e in lib.EVALUATIONS],
            "no_model": list(c.models_withheld),  # models the province cannot train
            "dropped": sorted(set().union(*c.models_withheld.values())),
        }
        for c in configs
    ]
    if fmt is not OutputFormat.table:
        return _emit(records, _VALIDATE_COLUMNS, fmt)
    for r in records:
        console.print(
            f"[green]ok[/] {r['province']}: optional {', '.join(r['optional']) or 'none'}; "
            f"custom {', '.join(r['custom']) or 'none'}; "
            + (f"per model {'; '.join(r['models'])}; " if r["models"] else "")
            + "services "
            + ", ".join(r["services"]),
            soft_wrap=True,
        )
        for name in r["no_model"]:
            console.print(
                f"[yellow]no {name} model[/] for {r['province']}: its file drops {', '.join(r['dropped'])} "
                f"from every model (drop_indicators), and {name} needs the nine mandatory credit indicators",
                soft_wrap=True,
            )


# --- monitoring -----------------------------------------------------------------------------------


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
        console.print(
            f"[red]ALERT[/] {alert['province']} {alert['task']}: "
            + "; ".join(
                f"{b['check']} {b['value']} ≥ {b['threshold']} ({b['evidence']})" for b in alert["breaches"]
            )
            + f"; moved: {moved or '—'}"
        )
    if result.alerts:
        console.print(
            "action: retrain the alerted models (`telcoml train --task X`); the champion/challenger gate "
            "decides, then `POST /reload` and `telcoml prepare`. Details per alert: alerts.json"
        )
    for skipped in result.skipped:
        console.print(f"skipped: {skipped}")
    console.print(f"reports: {result.report_dir} (summary.md, <province>/<task>.html)")


def _print_weeks_side_by_side(weeks) -> None:
    """Each province and task's status in every week of the demo, one column per week."""
    table = Table(title="A quiet week and the week the market changed")
    table.add_column("province")
    table.add_column("task")
    statuses = []
    for w in weeks:
        table.add_column(f"{w.kind} {w.week}")
        frame = w.weekly.table()
        statuses.append(
            {(r.province, r.task): f"{r.status} ({r.drifted} drifted)" for r in frame.itertuples(index=False)}
        )
    for key in sorted(set().union(*statuses)):
        cells = [s.get(key, "—") for s in statuses]
        table.add_row(*key, *[f"[red]{c}[/]" if c.startswith("ALERT") else c for c in cells])
    console.print(table)


def _print_monitor_stage(stage: MonitorStage, run: MonitorRunResult) -> None:
    if stage == "skipped":
        console.print(f"no records, skipped: {', '.join(run.skipped)}")
    else:
        _print_week(run.results[-1])


@app.command()
@user_errors
def monitor(
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W44 (default: last week).")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="Backfill: every week from this one to --week.")
    ] = None,
    province: Provinces = None,
    task: Annotated[list[TaskName] | None, typer.Option(help="Only these tasks (repeatable).")] = None,
    workdir: Workdir = None,
) -> None:
    """Weekly drift and data-quality reports against each champion; exit 3 when an alert is raised."""
    from monitoring.weekly import ALERT_EXIT_CODE
    from telcoml.pipeline import monitor_weeks

    with _Screen() as screen:
        run = monitor_weeks(
            _settings(workdir),
            week,
            since,
            _chosen(province),
            _chosen(task),
            status=screen.status,
            on_stage=screen.then(_print_monitor_stage),
        )
    console.print(f"Evidently UI: evidently ui --workspace {run.workspace} --port 8000")
    if run.alerts:
        raise typer.Exit(ALERT_EXIT_CODE)


@app.command()
@user_errors
def replay(
    month: Annotated[str, typer.Option(help="Snapshot month to replay, e.g. 2026-10.")],
    province: Provinces = None,
    workdir: Workdir = None,
) -> None:
    """Backfill monitoring history: score a past snapshot into the records of the week it went live."""
    from serving.batch import replay_month

    settings = _settings(workdir)
    with _bars() as bars:
        advance: dict = {}

        def progress(p: str, n: int) -> None:  # a bar per province, opened when its scoring starts
            if p not in advance:
                advance[p] = bars(f"replay {p}", None)
            advance[p](n)

        week = replay_month(settings, month, _chosen(province), progress)
    console.print(f"{month} snapshot recorded under week {week}: run `telcoml monitor --week {week}`")


# --- the main job ---------------------------------------------------------------------------------


def _print_demo_stage(stage: DemoStage, result: DemoResult) -> None:
    match stage:
        case "data":
            _print_quality(result.quality, result.settings)
            console.print(
                f"indicators: {result.indicator_rows:,} customer-months; "
                f"{len(result.indicator_problems)} indicator warnings"
            )
        case "feature_store":
            console.print(
                f"feature store: repository applied, {result.month} snapshot online "
                f"({result.settings.online_store})"
            )
        case "customer":
            _print_view(result.msisdn, result.view)
        case "training":
            _print_quality_table(result.training)
        case "prepared":
            console.print(
                f"prepared answers: {result.prepared.answers:,} customers in {result.prepared.seconds:.0f}s "
                "(/score answers them with one lookup; everyone else is scored live)"
            )
        case "monitoring":
            for demo_week in result.monitoring.weeks:
                console.rule(
                    f"{demo_week.kind} week: the {demo_week.month} snapshot, live in {demo_week.week}"
                )
                _print_week(demo_week.weekly)
            _print_weeks_side_by_side(result.monitoring.weeks)


@app.command()
@user_errors
def demo(
    workdir: Workdir = None,
    customers: Annotated[int, typer.Option(help="Subscribers across all provinces.")] = 20_000,
    months: Annotated[
        int, typer.Option(help="Months to generate (at least 5: the market changes in the last).")
    ] = 13,
    seed: int = 7,
    trials: Annotated[int, typer.Option(help="Optuna trials per task (a small budget for the demo).")] = 5,
    online_store: OnlineStore = None,
) -> None:
    """The main job on embedded defaults: generate, gate, indicators, Feast, train all tasks."""
    from telcoml.pipeline import run_demo

    settings = _settings(workdir, online_store)
    console.rule(f"telcoml demo in {settings.workdir}")
    with _Screen() as screen:
        result = run_demo(
            settings,
            customers,
            trials,
            screen.bars,
            months=months,
            seed=seed,
            status=screen.status,
            on_stage=screen.then(_print_demo_stage),
        )
    key, weekly = result.key, result.monitoring.weekly
    console.print(f"demo finished in {result.seconds:.0f}s. Next:")
    console.print(
        f"  evidently ui --workspace {result.monitoring.workspace} --port 8000   "
        f"(weekly reports; also {weekly.report_dir / 'summary.md'})"
    )
    console.print(f"  telcoml serve --workdir {settings.workdir} --port 3000")
    console.print(f"  TELCOML_API_KEY={key.key}   (also in {key.path})")
    console.print(
        f'  curl -s -X POST http://127.0.0.1:3000/score -H "X-API-Key: $TELCOML_API_KEY" '
        f"-H 'Content-Type: application/json' -d '{{\"msisdn\": \"{result.msisdn}\"}}'"
    )
    if settings.tracking_uri.startswith(("http://", "https://")):  # the tracking server is the UI
        console.print(f"  MLflow UI: {settings.tracking_uri}")
    else:
        console.print(f"  mlflow ui --backend-store-uri {settings.tracking_uri}")


if __name__ == "__main__":
    app()
