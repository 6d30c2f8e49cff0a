"""What a training run leaves for a reader of MLflow: its data as datasets, a description, and a
registered model that carries its code and requirements."""

import json
import shutil

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
