"""The platform against a real MLflow tracking server on PostgreSQL with its own artifact root:
training logs and registers there, serving loads the champions back through it."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from core.databases import drop_database, ensure_database
from core.settings import Settings
from tests.servers import free_port

PG_SERVER = os.environ.get("TELCOML_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` on a fresh PostgreSQL database and a temporary artifact root; stopped
    (with its workers: its own process group) and the database dropped afterwards."""
    database = PG_SERVER.rsplit("/", 1)[0] + f"/telcoml_mlflow_{uuid.uuid4().hex[:10]}"
    ensure_database(database)
    artifacts = tmp_path / "server-artifacts"
    port = free_port()
    log = open(tmp_path / "mlflow-server.log", "w")
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", database]
    command += ["--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a fresh database: the server migrates its schema first
        while True:
            if process.poll() is not None:
                tail = (tmp_path / "mlflow-server.log").read_text()[-3000:]
                pytest.fail(f"mlflow server exited {process.returncode}: {tail}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server not ready in 240 s")
            time.sleep(1)
        yield url, artifacts
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and its workers only
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()
        drop_database(database)


@pytest.mark.postgres
@pytest.mark.slow
def test_training_registers_on_the_server_and_serving_loads_from_it(tiny_world, tmp_path, mlflow_server):
    from core.tasks import task
    from serving.champions import load_champions
    from training.train import train_task
    from training.tune import TuningBudget
    from training.workers import task_data

    url, artifacts = mlflow_server
    workdir = tmp_path / "work"
    # without the tiny world's own tracking store (earlier tests may have made one): none is made here
    shutil.copytree(
        tiny_world.settings.workdir, workdir, ignore=shutil.ignore_patterns("mlflow.db*", "mlartifacts")
    )
    settings = Settings(workdir=workdir, mlflow_tracking_uri=url)

    result = train_task(
        settings, "churn", budget=TuningBudget(trials=2, max_rounds=40, seed=3, threads=1), train_months=1
    )

    assert result.promoted  # the server's registry had no champion: the first one is
    assert not (workdir / "mlflow.db").exists() and not (workdir / "mlartifacts").exists()
    client = MlflowClient(url)
    run = client.get_run(result.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location.startswith("mlflow-artifacts:/")  # stored by the server
    trials = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert len(trials) == result.trials == 2
    champion = client.get_model_version_by_alias(result.model_name, "champion")
    assert champion.version == result.version

    # the model as the server stored it, read from its artifact root on disk (not through the server)
    stored = list(artifacts.rglob("MLmodel"))
    assert len(stored) == 1  # the one model the run logged, uploaded through the server's proxy
    trained = mlflow.pyfunc.load_model(str(stored[0].parent)).unwrap_python_model().model

    models = load_champions(settings)  # through the server's registry and artifact proxy
    assert models.versions["churn"] == result.version
    served = models.models["churn"]
    t = task("churn")
    frame = task_data(settings, "churn", None, TuningBudget(), train_months=1)[2].frames["test"]
    expected = trained.probabilities(frame[t.feature_names])
    assert len(frame) > 100 and np.ptp(expected) > 0
    np.testing.assert_array_equal(served.probabilities(frame[t.feature_names]), expected)
    np.testing.assert_allclose(models.probabilities(frame)["churn"], expected, rtol=1e-6)
