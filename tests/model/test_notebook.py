"""The experiments notebook runs end to end on a freshly trained tiny world, and is saved clean."""

from __future__ import annotations

from pathlib import Path

import mlflow
import nbformat
import pytest
from nbclient import NotebookClient

from core.tasks import TASKS
from tests.conftest import TINY, build_world
from training.train import train_task
from training.tune import TuningBudget

# slow: trains and executes the whole notebook (~60 s); CI runs it (make test-all)
pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "experiments.ipynb"


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch) -> str:
    """A ``python3`` kernelspec for this interpreter, first on JUPYTER_PATH.

    Needs no registered kernel and ignores a user-level ``python3`` spec that might
    point at another Python: the kernel is this venv's ipykernel.
    """
    from ipykernel.kernelspec import write_kernel_spec

    jupyter = tmp_path / "jupyter"
    write_kernel_spec(jupyter / "kernels" / "python3")  # argv: sys.executable -m ipykernel_launcher
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    return "python3"


@pytest.fixture
def trained_tiny(tmp_path, monkeypatch):
    """A tiny world of its own (training writes MLflow and Optuna DBs into it), every task trained."""
    for name in (
        "TELCOML_MLFLOW_TRACKING_URI",
        "TELCOML_OPTUNA_STORAGE",
        "TELCOML_ONLINE_STORE",
        "MPLBACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    world = build_world(tmp_path / "work", TINY)
    budget = TuningBudget(trials=2, max_rounds=50, threads=1)  # one thread: no OpenMP contention on busy CI
    for name in TASKS:
        train_task(world.settings, name, budget=budget)
    yield world
    mlflow.set_tracking_uri(before[0])  # training pointed the process-wide URIs at this tmp world
    mlflow.set_registry_uri(before[1])


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def test_notebook_is_saved_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_experiments_notebook_runs_on_a_trained_world(trained_tiny, python3_kernel, monkeypatch):
    monkeypatch.setenv("TELCOML_WORKDIR", str(trained_tiny.settings.workdir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name=python3_kernel, resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    cells = {c.id: c for c in nb.cells}

    assert str(trained_tiny.settings.workdir.resolve()) in _text(cells["setup"])
    assert "telcoml/churn/all: 1 study run(s), 2 trial run(s)" in _text(cells["runs"])
    comparison = _text(cells["comparison"])
    for name, t in TASKS.items():
        assert name in comparison and t.headline in comparison
    assert "telcoml-churn version 1" in _text(cells["champion"])
    assert all(column in _text(cells["importance"]) for column in ("mean_abs_shap", "name_en", "name_zh"))
    assert "probability" in _text(cells["customer"])

    reasons = [line for line in _text(cells["reason-codes"]).splitlines() if line.startswith("churn:")]
    assert 1 <= len(reasons) <= 3  # top 3, fewer when a tiny model uses fewer indicators
    assert all("churn risk" in line and "流失风险" in line for line in reasons)

    images = [c.id for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images == ["trial-curve", "oracle-bars", "importance-plot", "contributions"]
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
