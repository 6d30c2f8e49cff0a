"""Several processes tuning one Optuna study on a shared storage (PostgreSQL), sharing its trials.

The lead (``training.train.train_task`` with ``workers`` > 1) opens the study inside its parent
MLflow run, queues the first trials and starts the helpers, one ``telcoml tune-worker`` process
each (``helpers``); every process tunes on the same rows (``task_data``; on the Spark path the
helpers read the lead's tuning sample, ``shared_sample``, instead of joining every row again),
runs its share of the trials (``training.tune.shares``) with its own sampler seed and logs each
trial as a run nested under the lead's parent run. Once all have finished, the lead refits, tests, registers
and gates the study's best trial, whichever process ran it. A helper on another machine is the
same command with the same settings (``telcoml tune-worker --parent-run <run id> ...``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import ConfigurationError, TelcomlError
from core.settings import Settings
from core.tasks import Task, task
from features.provinces import load_province
from training.data import (
    Dataset,
    Split,
    choose_split,
    dataset_of,
    label_months,
    load_labels,
    make_dataset,
)
from training.registry import configure_mlflow
from training.tune import TuningBudget, TuningWorker, study_name, tune

#: Study storages several processes can share (SQLite locks the whole file on every write).
SHARED_STORAGES = ("postgresql", "mysql")
#: The parts a study tunes on, and the column that names a row's part in a tuning sample file.
TUNED = ("train", "valid")
PART = "split_part"
#: The tuning sample file's metadata: its split and every row's count.
SAMPLE_KEY = b"telcoml.tuning_sample"


def task_data(
    settings: Settings,
    task_name: str,
    province: str | None,
    budget: TuningBudget,
    test_month: str | None = None,
    train_months: int = 4,
) -> tuple[Task, Split, Dataset, TuningBudget]:
    """The task as the province tailors it, its split, its dataset and the budget suited to its
    table: what the lead and every helper of a study build alike."""
    t = task(task_name).tailored(load_province(settings, province))  # a province file's own indicator set
    split = choose_split(task_months(settings, t, province), train_months, test_month)
    data = task_dataset(settings, t, split, province)
    return t, split, data, budget.suited(data.rows["train"])


def task_months(settings: Settings, t: Task, province: str | None) -> list[str]:
    """The months with the task's labels (``NotReadyError`` without any); read by Spark on the
    Spark path."""
    if settings.engine == "spark":
        from training import spark_rows

        return spark_rows.label_months(settings, t, province)
    return label_months(load_labels(settings, province), t)


def task_dataset(settings: Settings, t: Task, split: Split, province: str | None) -> Dataset:
    """The task's rows of the split: whole on the embedded path; on the Spark path every row
    stays in Spark and the driver holds a sample (release with ``training.data.held``)."""
    if settings.engine == "spark":
        from training import spark_rows

        return spark_rows.spark_dataset(settings, t, split, province)
    return make_dataset(settings, t, split, province)


def check_shared(storage: str, workers: int) -> None:
    """Several workers need a study storage they can share: a clear error otherwise."""
    if workers < 1:
        raise ConfigurationError(f"workers: {workers}; at least 1")
    if workers > 1 and not storage.startswith(SHARED_STORAGES):
        raise ConfigurationError(
            f"{workers} tuning workers need a study storage they can share, and it is "
            f"{storage.split(':')[0] or 'in memory'}: set TELCOML_OPTUNA_STORAGE="
            "postgresql+psycopg://user@host:5432/database"
        )


@dataclass(frozen=True)
class TuningOrder:
    """What a helper needs to join the lead's study: the task and its data, the whole budget,
    and the lead's parent run."""

    task: str
    province: str | None
    budget: TuningBudget
    test_month: str | None
    train_months: int
    parent_run_id: str
    #: The Spark path: the lead's tuning sample (``write_tuning_sample``), which a helper reads
    #: instead of joining the rows again.
    sample: str | None = None


def tune_worker(settings: Settings, order: TuningOrder, index: int, trials: int) -> int:
    """A helper's part: join the study the lead opened and run ``trials`` of its trials, each a
    run nested under the lead's parent run. Returns the trials this process ran."""
    if index < 1:
        raise ConfigurationError("a helper's worker number is 1 or more (0 is the lead)")
    check_shared(settings.study_storage, 2)
    if order.sample:  # the lead's own tuning sample: no join, no Spark in a helper
        t = task(order.task).tailored(load_province(settings, order.province))
        split, data = read_tuning_sample(settings, t, order.province, Path(order.sample))
        budget = order.budget.suited(data.rows["train"])
    else:
        t, split, data, budget = task_data(
            settings, order.task, order.province, order.budget, order.test_month, order.train_months
        )
        if data.spark_rows is not None:  # a helper started by hand on the Spark path: the lead's sample
            from training.distributed import tuning_sample

            data.spark_rows.release()  # a helper only tunes: Spark's rows are the lead's to fit
            data = tuning_sample(data, settings.spark_tuning_sample, budget.seed)
    configure_mlflow(settings, t.experiment_name(order.province))
    name = study_name(t, order.province, f"{split.tag}-s{budget.seed}")
    worker = TuningWorker(index, trials, order.parent_run_id)
    study, _ = tune(t, data, budget, settings.study_storage, name, worker=worker)
    return sum(tr.user_attrs.get("worker") == worker.name for tr in study.trials)


def write_tuning_sample(data: Dataset, path: Path) -> Path:
    """The rows a study tunes on (the train and validation parts), their split and every row's
    count, as one Parquet file a helper reads (``read_tuning_sample``); written whole or not at
    all."""
    frame = pd.concat([data.frames[k].assign(**{PART: k}) for k in TUNED], ignore_index=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    about = {"split": asdict(data.split), "rows": data.rows}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), SAMPLE_KEY: json.dumps(about)})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial)
    partial.replace(path)
    return path


@contextmanager
def shared_sample(settings: Settings, data: Dataset, name: str, workers: int) -> Iterator[str | None]:
    """On the Spark path with helpers, the lead's tuning sample written for them in
    ``<workdir>/tuning/`` (which a helper on another machine reaches as the lead does), removed
    when the block ends; else None."""
    if settings.engine != "spark" or workers < 2:
        yield None
        return
    path = settings.workdir / "tuning" / f"{name}-{os.getpid()}-sample.parquet"
    write_tuning_sample(data, path)
    try:
        yield str(path)
    finally:
        path.unlink(missing_ok=True)


def read_tuning_sample(
    settings: Settings, t: Task, province: str | None, path: Path
) -> tuple[Split, Dataset]:
    """The lead's tuning sample as a ``Dataset`` of its train and validation parts (the rows'
    whole counts in its lineage), and the split it was drawn from."""
    table = pq.read_table(path)
    about = json.loads(table.schema.metadata[SAMPLE_KEY])
    split = Split(**{**about["split"], "train": tuple(about["split"]["train"])})
    frame = table.to_pandas()
    parts = {k: frame[frame[PART] == k].drop(columns=PART) for k in TUNED}
    return split, dataset_of(settings, t, split, parts, province, rows=about["rows"])


def worker_command(order: TuningOrder, index: int, trials: int) -> list[str]:
    """The ``telcoml tune-worker`` command line of helper ``index``."""
    b = order.budget
    command = [sys.executable, "-m", "telcoml.cli", "tune-worker", "--task", order.task]
    command += ["--parent-run", order.parent_run_id, "--worker", str(index), "--share", str(trials)]
    command += ["--trials", str(b.trials), "--seed", str(b.seed), "--train-months", str(order.train_months)]
    command += ["--max-rounds", str(b.max_rounds), "--early-stopping-rounds", str(b.early_stopping_rounds)]
    command += ["--threads", str(b.threads)]
    for option, value in (
        ("--province", order.province),
        ("--test-month", order.test_month),
        ("--timeout", b.timeout_seconds),
        ("--sample", order.sample),
    ):
        if value is not None:
            command += [option, str(value)]
    return command


def settings_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with ``settings`` as ``TELCOML_*`` variables (a helper sees
    the lead's work directory, stores and tracking server however the lead was configured)."""
    env = dict(os.environ)
    for key, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[f"TELCOML_{key.upper()}"] = (
                json.dumps(value) if isinstance(value, dict | list) else str(value)
            )
    return env


class Helpers:
    """The lead's helpers, one ``telcoml tune-worker`` process for each share after the first (the
    lead's own), started at once: their start (imports, dataset) overlaps the lead's own work
    before its trials, and they join the study when the lead opens it (``wait_for_study``).
    Each writes ``<workdir>/tuning/<parent run>-worker<n>.log``."""

    def __init__(self, settings: Settings, order: TuningOrder, trial_shares: list[int]):
        logs = settings.workdir / "tuning"
        logs.mkdir(parents=True, exist_ok=True)
        env = settings_environment(settings)
        self.started: list[tuple[subprocess.Popen, IO]] = []
        try:
            for index, trials in enumerate(trial_shares[1:], 1):
                log = (logs / f"{order.parent_run_id}-worker{index}.log").open("w")
                command = worker_command(order, index, trials)
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
                self.started.append((process, log))
        except BaseException:
            self.stop()
            raise

    def wait(self) -> None:
        """Wait for every helper: one that failed is an error naming its log."""
        failed = []
        for index, (process, log) in enumerate(self.started, 1):
            if process.wait() != 0:
                failed.append(f"worker {index} (exit {process.returncode}, log {log.name})")
            log.close()
        if failed:
            raise TelcomlError("tuning workers failed: " + "; ".join(failed))

    @contextmanager
    def joined(self) -> Iterator[None]:
        """Around the lead's own trials: on leaving, the helpers' are done too."""
        yield
        self.wait()

    def stop(self) -> None:
        """Stop the helpers still running (the lead failed)."""
        for process, log in self.started:
            if process.poll() is None:
                process.terminate()
            process.wait()
            log.close()


@contextmanager
def helpers(settings: Settings, order: TuningOrder, trial_shares: list[int]) -> Iterator[Helpers]:
    """The lead's helpers for the block: started on entering, waited for on leaving (a failed
    helper is an error), stopped if the block fails."""
    crew = Helpers(settings, order, trial_shares)
    try:
        yield crew
    except BaseException:
        crew.stop()
        raise
    crew.wait()


__all__ = [
    "task_data",
    "task_months",
    "task_dataset",
    "check_shared",
    "TuningOrder",
    "tune_worker",
    "helpers",
    "Helpers",
    "worker_command",
    "write_tuning_sample",
    "shared_sample",
    "read_tuning_sample",
]
