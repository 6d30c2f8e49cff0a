"""Several workers tune one study through a PostgreSQL study storage; the lead registers its best."""

import os
import shutil
import socket
import uuid
from collections import Counter

import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient

from core.databases import drop_database, ensure_database
from core.errors import ConfigurationError
from core.settings import Settings
from training.tune import TuningBudget, shares
from training.workers import check_shared

PG_SERVER = os.environ.get("TELCOML_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def fresh_postgres():
    """A new, empty PostgreSQL database of this test's own, dropped afterwards."""
    url = PG_SERVER.rsplit("/", 1)[0] + f"/telcoml_tune_{uuid.uuid4().hex[:10]}"
    ensure_database(url)
    yield url
    drop_database(url)


def test_trials_are_shared_and_several_workers_need_a_shared_storage(tmp_path):
    assert shares(7, 2) == [4, 3] and shares(6, 3) == [2, 2, 2] and shares(5, 1) == [5]
    with pytest.raises(ConfigurationError, match="at least one each"):
        shares(1, 2)
    check_shared("sqlite:///x.db", 1)  # one worker: any storage
    check_shared("postgresql+psycopg://u@h/db", 4)
    with pytest.raises(ConfigurationError, match="TELCOML_OPTUNA_STORAGE=postgresql"):
        check_shared(Settings(workdir=tmp_path).study_storage, 2)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_tune_one_study_and_the_lead_registers_its_best(tiny_world, tmp_path, fresh_postgres):
    from core.tasks import task
    from training.registry import configure_mlflow, load_task_model
    from training.train import train_task

    workdir = tmp_path / "work"  # a copy: the shared tiny world keeps no champion of this test's
    shutil.copytree(tiny_world.settings.workdir, workdir)
    settings = Settings(workdir=workdir, optuna_storage=fresh_postgres)
    budget = TuningBudget(trials=6, max_rounds=40, seed=3, threads=1)

    counted: list[int] = []  # the training bar: every worker's trials, not the lead's three
    result = train_task(
        settings, "churn", budget=budget, train_months=1, tuning_workers=2, progress=counted.append
    )
    assert sum(counted) == budget.trials

    configure_mlflow(settings)
    client = MlflowClient()
    parent = client.get_run(result.run_id)
    study = optuna.load_study(study_name=parent.data.tags["optuna.study"], storage=fresh_postgres)
    trials = study.trials
    # the budget shared: six trials in all, numbered once each, every one finished
    assert len(trials) == budget.trials == result.trials
    assert sorted(tr.number for tr in trials) == list(range(budget.trials))
    finished = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(tr.state in finished for tr in trials)
    # by two processes, three trials each: this one (the lead) and the helper it started
    workers = Counter(tr.user_attrs["worker"] for tr in trials)
    assert sorted(workers.values()) == [3, 3]
    assert f"{socket.gethostname()}:{os.getpid()}" in workers
    # every trial of both workers is a run nested under the lead's parent run
    nested = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert {r.info.run_id for r in nested} == {tr.user_attrs["mlflow_run_id"] for tr in trials}
    assert Counter(r.data.tags["optuna.worker"] for r in nested) == workers
    # what was registered is the study's best trial, whichever worker ran it
    best = study.best_trial
    assert {k: parent.data.params[f"best_{k}"] for k in best.params} == {
        k: str(v) for k, v in best.params.items()
    }
    version = client.get_model_version(result.model_name, result.version)
    assert version.run_id == result.run_id
    model = load_task_model(f"models:/{result.model_name}/{result.version}")
    assert model.task.name == task("churn").name
    assert model.best_iteration == best.user_attrs["best_iteration"]


def test_a_helper_reads_the_leads_tuning_sample_as_the_lead_tunes_on_it(tiny_world, tmp_path):
    """The Spark path's helpers tune on the lead's sample, read from a file, not joined again."""
    from core.tasks import task
    from training.data import choose_split, label_months, load_labels, make_dataset
    from training.distributed import tuning_sample
    from training.workers import read_tuning_sample, write_tuning_sample

    s = tiny_world.settings
    t = task("channel_preference")
    data = make_dataset(s, t, choose_split(label_months(load_labels(s), t), 1))
    lead = tuning_sample(data, 400, seed=3)
    assert len(lead.y["train"]) < len(data.y["train"])  # a sample, not every row
    path = write_tuning_sample(lead, tmp_path / "tuning" / "study-sample.parquet")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left
    split, helper = read_tuning_sample(s, t, None, path)
    assert split == data.split and helper.rows == data.rows  # every row's count, for the budget
    for part in ("train", "valid"):
        pd.testing.assert_frame_equal(helper.X[part], lead.X[part])
        np.testing.assert_array_equal(helper.y[part], lead.y[part])
    assert set(helper.X) == {"train", "valid"}  # the held-out part never leaves the lead


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.spark
def test_two_workers_on_the_spark_path_share_the_leads_sample(tiny_world, tmp_path, fresh_postgres):
    """With ``TELCOML_ENGINE=spark`` the helper tunes on the lead's sample: it starts no Spark
    of its own (a join of every row per helper), and the file is gone after the study."""
    workdir = tmp_path / "work"
    shutil.copytree(tiny_world.settings.workdir, workdir)
    settings = Settings(
        workdir=workdir,
        optuna_storage=fresh_postgres,
        engine="spark",
        spark_master="local[2]",
        spark_driver_memory="1g",
        spark_num_workers=2,
    )
    from training.train import train_task

    budget = TuningBudget(trials=4, max_rounds=40, seed=3, threads=1)
    result = train_task(settings, "churn", budget=budget, train_months=1, tuning_workers=2, refit=False)
    from training.registry import configure_mlflow

    configure_mlflow(settings)
    parent = MlflowClient().get_run(result.run_id)
    study = optuna.load_study(study_name=parent.data.tags["optuna.study"], storage=fresh_postgres)
    assert sorted(Counter(tr.user_attrs["worker"] for tr in study.trials).values()) == [2, 2]
    log = (workdir / "tuning" / f"{result.run_id}-worker1.log").read_text()
    assert "2 trials of churn" in log and "Spark" not in log, log[-2000:]
    assert not list((workdir / "tuning").glob("*sample*"))
