"""The work directory's feature_repo/ driven by the Feast CLI, as a Feast user would."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
import yaml

from core.errors import NotReadyError
from core.io import snapshot_time
from core.settings import Settings
from features.repo import definitions
from features.store import apply_repository, online_view, open_store, training_frame

FEAST = str(Path(sys.executable).with_name("feast"))


def user_environment() -> dict[str, str]:
    """A Feast user's shell: none of the variables this test process has set for MLflow
    (``mlflow.set_registry_uri`` exports MLFLOW_REGISTRY_URI to children) or telcoml."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TELCOML_", "MLFLOW_"))}


def feast(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The Feast CLI run in the repository folder, as its documentation runs it."""
    return subprocess.run(
        [FEAST, *args], cwd=repo, env=user_environment(), capture_output=True, text=True, timeout=timeout
    )


def registry_objects(settings: Settings) -> dict[str, set[str]]:
    store = open_store(settings)
    return {
        "entities": {e.name for e in store.list_entities()},
        "feature_views": {v.name for v in store.list_feature_views()},
        "feature_services": {s.name for s in store.list_feature_services()},
        "data_sources": {d.name for d in store.list_data_sources()},
    }


def test_the_repository_folder_names_no_absolute_path(tiny_world):
    repo = tiny_world.settings.feature_repo_dir
    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    assert config["registry"]["path"] == "registry.db"
    assert config["online_store"]["path"] == "online_store.db"
    assert config["mlflow"]["tracking_uri"] == "sqlite:///../mlflow.db"
    assert "../provinces" in (repo / "definitions.py").read_text()
    assert (repo / ".feastignore").exists()
    sources = {v.name: v.batch_source.path for v in open_store(tiny_world.settings).list_feature_views()}
    assert sources["usage"] == "../offline/usage/*.parquet"
    assert not any(Path(p).is_absolute() for p in sources.values())


def test_feast_plan_in_the_folder_deletes_nothing(tiny_world):
    result = feast(tiny_world.settings.feature_repo_dir, "plan")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Deleted" not in result.stdout, result.stdout[-3000:]
    assert "No changes to infrastructure" in result.stdout, result.stdout[-3000:]


def test_a_registry_written_with_absolute_sources_is_refused_once_moved(tiny_world, tmp_path):
    """A work directory from before (absolute sources in the registry), moved: training is told to
    register the repository again instead of reading nothing, or another place's files."""
    before = Settings(workdir=tmp_path / "before")
    shutil.copytree(tiny_world.settings.workdir, before.workdir)
    open_store(before).apply(definitions(before.offline_dir.resolve()))  # as earlier versions did
    after = Settings(workdir=before.workdir.rename(tmp_path / "after"))
    latest = tiny_world.labels[tiny_world.labels["month"] == tiny_world.months[-1]]
    entity = latest[["msisdn"]].head(5).assign(event_timestamp=snapshot_time(tiny_world.months[-1]))

    with pytest.raises(NotReadyError, match="telcoml materialize"):
        training_frame(open_store(after), entity, "churn")
    frame = training_frame(apply_repository(after), entity, "churn")
    assert frame["tenure_months"].notna().all()


@pytest.mark.slow
def test_feast_apply_and_materialize_keep_the_store(tiny_world, tmp_path):
    """`feast apply` leaves the registry as telcoml built it; `feast materialize` loads the snapshot."""
    workdir = tmp_path / "work"
    shutil.copytree(tiny_world.settings.workdir, workdir)
    settings = Settings(workdir=workdir)
    before = registry_objects(settings)
    repo = settings.feature_repo_dir

    applied = feast(repo, "apply")
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert "Deleted" not in applied.stdout
    assert registry_objects(settings) == before

    with closing(sqlite3.connect(repo / "online_store.db")) as db, db:  # emptied: feast materialize fills it
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            db.execute(f'DELETE FROM "{table}"')
    latest = tiny_world.months[-1]
    loaded = feast(repo, "materialize", f"{latest}-29T00:00:00", f"{latest}-30T23:59:59")
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    labels = tiny_world.labels[tiny_world.labels["month"] == latest]
    view = online_view(open_store(settings), list(labels["msisdn"].head(3)), "credit_grade")
    assert view["tenure_months"].notna().all()
    # the copy's apply tore down nothing of the original's (Feast records tables by absolute path)
    original = online_view(open_store(tiny_world.settings), list(labels["msisdn"].head(3)), "credit_grade")
    assert original["tenure_months"].notna().all()


@pytest.mark.slow
def test_feast_ui_answers_and_lists_the_models_of_each_feature(trained_world):
    """`feast ui` in the folder: its pages, and Feast's MLflow lineage from the training runs."""
    from tests.servers import free_port

    port = free_port()
    repo = trained_world.settings.feature_repo_dir
    log = open(trained_world.settings.workdir / f"feast-ui-{port}.log", "w")
    ui = subprocess.Popen(
        [FEAST, "ui", "--host", "127.0.0.1", "--port", str(port)],
        cwd=repo,
        env=user_environment(),
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert ui.poll() is None, Path(log.name).read_text()[-3000:]
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, Path(log.name).read_text()[-3000:]
                time.sleep(0.5)
        assert page.status_code == 200
        views = httpx.get(f"http://127.0.0.1:{port}/api/v1/feature_views?project=telcoml", timeout=30)
        assert views.status_code == 200 and "complaints_service" in views.text
        lineage = httpx.get(f"http://127.0.0.1:{port}/api/mlflow-feature-models", timeout=60).json()
        models = {m["model_name"] for m in lineage["feature_models"].get("profile:tenure_months", [])}
        assert "telcoml-churn" in models, lineage
    finally:
        ui.terminate()
        try:
            ui.wait(20)
        except subprocess.TimeoutExpired:
            ui.kill()
        log.close()
