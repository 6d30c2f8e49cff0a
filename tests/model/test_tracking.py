"""What a training run leaves for a reader of MLflow: its data as datasets, a description, and a
registered model that carries its code and requirements."""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from core.settings import Settings
from core.tasks import task
from training.registry import configure_mlflow
from training.train import train_task
from training.tune import TuningBudget


@pytest.fixture(scope="module")
def churn_run(tiny_world, tmp_path_factory):
    """Churn trained on a copy of the tiny world (its registry stays untouched), two trials."""
    workdir = tmp_path_factory.mktemp("tracking") / "work"
    shutil.copytree(tiny_world.settings.workdir, workdir)
    settings = Settings(workdir=workdir)
    result = train_task(
        settings, "churn", budget=TuningBudget(trials=2, max_rounds=60, seed=2, threads=1), train_months=1
    )
    configure_mlflow(settings, task("churn").experiment_name())
    return settings, result


def test_the_training_run_names_its_data_as_datasets_from_the_feature_service(churn_run):
    _, result = churn_run
    run = MlflowClient().get_run(result.run_id)
    inputs = {{t.key: t.value for t in i.tags}["mlflow.data.context"]: i for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "validation", "testing"}
    for context, part in (("training", "train"), ("validation", "valid"), ("testing", "test")):
        dataset_input = inputs[context]
        tags = {t.key: t.value for t in dataset_input.tags}
        dataset = dataset_input.dataset
        assert dataset.name == f"churn_v1-{part}" and dataset.source_type == "feast"
        source = json.loads(dataset.source)
        assert source["feature_service"] == tags["feature_service"] == "churn_v1"
        assert source["snapshot_months"] == tags["snapshot_months"].split(",")
        assert int(tags["rows"]) == json.loads(dataset.profile)["num_rows"] > 0
        assert task("churn").label in {c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]}


def test_the_training_run_describes_itself(churn_run):
    _, result = churn_run
    description = MlflowClient().get_run(result.run_id).data.tags["mlflow.note.content"]
    assert "`churn_v1`" in description and f"version {result.version}" in description
    assert f"{result.metrics['test_roc_auc']:.4f}" in description


def test_the_registered_model_carries_its_code_and_pinned_requirements(churn_run, tmp_path):
    import mlflow

    _, result = churn_run
    mlflow.artifacts.download_artifacts(f"models:/{result.model_name}/{result.version}", dst_path=tmp_path)
    mlmodel = yaml.safe_load((tmp_path / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["code"] == "code"
    assert {"core", "training"} <= {p.name for p in (tmp_path / "code").iterdir()}
    requirements = (tmp_path / "requirements.txt").read_text().split()
    pinned = {line.split("==")[0] for line in requirements if "==" in line}
    assert {"mlflow", "xgboost", "pandas", "numpy", "pydantic", "cloudpickle"} <= pinned


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_registered_model_serves_from_a_fresh_environment_outside_the_checkout(churn_run, tmp_path):
    """``mlflow models serve`` in a new virtual environment holding only the model's requirements.txt,
    started outside this checkout without PYTHONPATH: the model brings its own code."""
    import mlflow

    from training.registry import load_task_model

    _, result = churn_run
    uri = f"models:/{result.model_name}/{result.version}"
    model_dir = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp_path / "model"))
    venv = tmp_path / "venv"
    uv = [shutil.which("python3") or "python3", "-m", "uv"]  # as the Makefile runs it
    subprocess.run([*uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    started = time.perf_counter()
    python, requirements = str(venv / "bin" / "python"), str(model_dir / "requirements.txt")
    subprocess.run([*uv, "pip", "install", "-q", "--python", python, "-r", requirements], check=True)
    print(f"requirements installed in {time.perf_counter() - started:.0f} s")
    port = _free_port()
    outside = ("PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")
    env = {k: v for k, v in os.environ.items() if k not in outside}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    server = subprocess.Popen(
        [
            str(venv / "bin" / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(1)
        body = (model_dir / "serving_input_example.json").read_text()  # MLflow's own, NaN for missing
        answer = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        served = pd.DataFrame(answer.json()["predictions"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    rows = pd.DataFrame(**json.loads(body)["dataframe_split"])
    expected = load_task_model(uri).predict(rows)
    assert list(served.columns) == list(expected.columns) and len(served) == len(rows) > 0
    pd.testing.assert_frame_equal(served, expected.reset_index(drop=True), check_dtype=False)


def test_a_version_is_registered_quietly_and_linked_to_its_run_and_model(churn_run, capfd):
    """Registering prints nothing (MLflow's fluent registration printed three lines per model on
    stderr) and the version names the run and the logged model it came from."""
    import mlflow

    from training.registry import log_task_model

    _, result = churn_run
    uri = f"models:/{result.model_name}/{result.version}"
    served = mlflow.pyfunc.load_model(uri)
    example = served.input_example
    capfd.readouterr()
    with mlflow.start_run() as run:
        version = log_task_model(served.unwrap_python_model().model, example, {}, result.model_name)
    printed = capfd.readouterr()
    assert "registered model" not in printed.err.lower() and "Created version" not in printed.err
    assert int(version.version) == int(result.version) + 1
    # the version's source is the logged model (``models:/m-...``), which names its run
    assert version.run_id == run.info.run_id and version.source.startswith("models:/m-")
    assert mlflow.get_logged_model(version.source.removeprefix("models:/")).source_run_id == run.info.run_id
