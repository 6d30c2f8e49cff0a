"""A work directory moved or copied elsewhere keeps working: nothing stored in it names its place."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from core.settings import Settings
from features.store import open_store
from training.registry import configure_mlflow


def stored_locations(database: Path) -> list[str]:
    """Every artifact location MLflow keeps in a work directory's store (MLflow's own Default
    experiment, which telcoml never logs to, aside)."""
    queries = [
        "SELECT artifact_location FROM experiments WHERE name != 'Default'",
        "SELECT artifact_uri FROM runs",
        "SELECT artifact_location FROM logged_models",
        "SELECT storage_location FROM model_versions",
    ]
    with closing(sqlite3.connect(database)) as db:
        return [location for query in queries for (location,) in db.execute(query)]


def test_a_store_written_with_absolute_locations_is_rewritten_when_opened(tmp_path):
    """A work directory from before (file:// locations), moved: its runs' artifacts are found."""
    before = Settings(workdir=tmp_path / "before")
    before.artifact_root.mkdir(parents=True)
    client = MlflowClient(before.tracking_uri)
    experiment = client.create_experiment("telcoml/old", artifact_location=before.artifact_root.as_uri())
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "trained before", "note.txt")
    client.set_terminated(run.info.run_id)
    (tmp_path / "before").rename(tmp_path / "after")

    configure_mlflow(Settings(workdir=tmp_path / "after"), "telcoml/old")
    assert stored_locations(tmp_path / "after" / "mlflow.db") == [
        "workdir:/mlartifacts",
        f"workdir:/mlartifacts/{run.info.run_id}/artifacts",
    ]
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/note.txt") == "trained before"


def test_a_copy_logs_to_its_own_artifacts(tmp_path):
    """Copied while the original stays: each work directory keeps what is logged in it."""
    original = Settings(workdir=tmp_path / "original")
    configure_mlflow(original, "telcoml/copy")
    with mlflow.start_run() as first:
        mlflow.log_text("in the original", "note.txt")
    shutil.copytree(original.workdir, tmp_path / "copy")

    copy = Settings(workdir=tmp_path / "copy")
    configure_mlflow(copy, "telcoml/copy")
    with mlflow.start_run() as second:
        mlflow.log_text("in the copy", "note.txt")
    assert mlflow.artifacts.load_text(f"runs:/{first.info.run_id}/note.txt") == "in the original"
    assert (copy.artifact_root / second.info.run_id / "artifacts" / "note.txt").exists()
    assert not (original.artifact_root / second.info.run_id).exists()


@pytest.mark.slow
def test_a_moved_work_directory_serves_score_and_runs_the_commands(trained_world, keys, customers, tmp_path):
    from telcoml.cli import app
    from tests.servers import Server
    from training.train import train_task
    from training.tune import TuningBudget

    copied = tmp_path / "copied"
    logs = shutil.ignore_patterns("server-*.log", "feast-ui-*.log", "bentoml")
    shutil.copytree(trained_world.settings.workdir, copied, ignore=logs)
    moved = copied.rename(tmp_path / "moved")  # the copy's first place is gone
    settings = Settings(workdir=moved)

    assert all(location.startswith("workdir:/") for location in stored_locations(moved / "mlflow.db"))
    sources = [v.batch_source.path for v in open_store(settings).list_feature_views()]
    assert not any(Path(path).is_absolute() for path in sources)

    server = Server(moved)
    try:
        answer = httpx.post(
            f"{server.url}/score",
            json={"msisdn": customers["GD"]},
            headers={"X-API-Key": keys["group"]},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert set(answer.json()["model_versions"]) >= {"credit_grade", "churn"}
    finally:
        server.stop()

    loaded = CliRunner().invoke(app, ["materialize", "--workdir", str(moved)])
    assert loaded.exit_code == 0, loaded.output
    result = train_task(settings, "churn", budget=TuningBudget(trials=2, max_rounds=50, seed=4, threads=1))
    version = MlflowClient().get_model_version("telcoml-churn", str(result.version))
    model_id = version.source.removeprefix("models:/")
    assert (settings.artifact_root / "models" / model_id / "artifacts" / "MLmodel").exists()
    assert not (trained_world.settings.artifact_root / "models" / model_id).exists()
