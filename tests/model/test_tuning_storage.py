"""Several workers tune one study through a PostgreSQL study storage."""

import os
import uuid
from multiprocessing import get_context

import optuna
import pytest

from training.tune import TuningBudget, tune

PG_URL = os.environ.get("TELCOML_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _worker(args):
    workdir, study, trials = args
    import mlflow

    from core.settings import Settings
    from core.tasks import task
    from training.data import load_truth, make_dataset, time_split
    from training.registry import configure_mlflow

    settings = Settings(workdir=workdir)
    t = task("churn")
    data = make_dataset(settings, t, time_split(sorted(load_truth(settings, "labels")["month"].unique()), 1))
    configure_mlflow(settings, t.experiment_name())
    with mlflow.start_run(run_name=f"worker-{os.getpid()}"):
        tune(t, data, TuningBudget(trials=trials, max_rounds=30, seed=os.getpid()), PG_URL, study)
    return os.getpid()


@pytest.mark.postgres
def test_two_workers_share_one_postgres_study(tiny_world):
    from core.tasks import task
    from training.registry import configure_mlflow

    # create the tracking database once: SQLite MLflow stores cannot be migrated concurrently
    configure_mlflow(tiny_world.settings, task("churn").experiment_name())
    study = f"test-{uuid.uuid4().hex[:8]}"
    try:
        with get_context("spawn").Pool(2) as pool:
            pids = pool.map(_worker, [(tiny_world.settings.workdir, study, 2)] * 2)
        assert len(set(pids)) == 2
        loaded = optuna.load_study(study_name=study, storage=PG_URL)
        assert len(loaded.trials) == 4
        assert loaded.best_value > 0
    finally:
        optuna.delete_study(study_name=study, storage=PG_URL)
