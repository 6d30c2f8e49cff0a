"""The MLflow registry: a model per task and province, and the champion/challenger gate.

A new version becomes ``champion`` only if it reaches the best baseline (a plain model on
the same held-out rows) and beats the current champion on the same customers by the
configured margin; otherwise it is tagged ``challenger``. The decision, its reason and the
scores are recorded on the version and on the training run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from core.settings import Settings
from core.tasks import Task
from training import artifact_store
from training.model import ScorecardModel, TaskModel

# TaskModelPyfunc is also named here: versions registered before training.pyfunc unpickle it from here
from training.pyfunc import MODEL_CODE, TaskModelPyfunc, model_requirements

if TYPE_CHECKING:  # annotations only: serving loads the registry without the baselines
    from mlflow.entities.model_registry import ModelVersion

    from training.baselines import BaselineCheck

CHAMPION = "champion"
CHALLENGER = "challenger"


def tracking_server(uri: str) -> bool:
    """Whether the tracking URI names an MLflow tracking server (not a database it reads itself)."""
    return uri.startswith(("http://", "https://"))


def configure_mlflow(settings: Settings, experiment: str | None = None) -> str | None:
    """Point MLflow at the settings' tracking store and make sure the experiment exists; without
    one, only the store (reading the registry logs no run: no empty experiment is created).

    The work directory's own store records its artifacts as ``workdir:/mlartifacts/...``
    (``training.artifact_store``) so the work directory can be moved or copied; one written
    with absolute locations is rewritten first. A database named by ``TELCOML_MLFLOW_TRACKING_URI``
    keeps absolute locations; a tracking server (``http(s)://``) keeps its experiments' artifacts
    under its own artifact root, uploaded and downloaded through it (``make mlflow-server``).
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    own_store = settings.mlflow_tracking_uri is None
    # the artifact root's name inside the work directory, without resolving links (a test shares
    # a trained world's store and artifacts through symbolic links)
    folder = settings.workdir / settings.artifact_dir_name
    artifacts = Path(os.path.relpath(folder, settings.workdir)).as_posix()
    if own_store:
        artifact_store.register()
        artifact_store.adopt_absolute_locations(settings.workdir / "mlflow.db", artifacts)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    if experiment is None:
        return None
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        if tracking_server(settings.tracking_uri):  # the server's artifact root (--artifacts-destination)
            location = None
        else:
            settings.artifact_root.mkdir(parents=True, exist_ok=True)
            location = artifact_store.workdir_uri(artifacts) if own_store else settings.artifact_root.as_uri()
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    else:
        experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def log_task_model(
    model: TaskModel | ScorecardModel, example: pd.DataFrame, metadata: dict, registered_name: str
) -> ModelVersion:
    """Log the model as a pyfunc with signature, input example, its code and pinned requirements
    (``training.pyfunc``: it loads outside this checkout), and register it as a new version of
    ``registered_name`` (created on its first version). Registered through ``MlflowClient``, which
    prints nothing: the fluent ``registered_model_name`` prints three lines per model on stderr,
    and the commands print their own summary of the versions."""
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "task_model")
        signature = infer_signature(example, model.predict(example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=TaskModelPyfunc(),
            artifacts={"task_model": str(Path(tmp) / "task_model")},
            signature=signature,
            input_example=example,
            metadata=metadata,
            code_paths=list(MODEL_CODE),
            pip_requirements=model_requirements(),
        )
    client = MlflowClient()
    try:
        client.create_registered_model(registered_name)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    return client.create_model_version(
        registered_name, source=info.model_uri, run_id=info.run_id, model_id=info.model_id
    )


def load_task_model(uri: str) -> TaskModel | ScorecardModel:
    """The model (either method) behind a registry URI such as ``models:/telcoml-churn@champion``."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model().model


@dataclass
class GateDecision:
    promoted: bool
    challenger_version: str
    challenger_score: float
    champion_version: str | None
    champion_score: float | None
    margin: float
    metric: str
    #: why: the first rule that refused, or what the challenger beat
    reason: str = ""
    #: the rows both were judged on (or that the champion's recorded score was read)
    basis: str = ""
    baseline: str | None = None
    baseline_score: float | None = None

    def as_tags(self) -> dict[str, str]:
        def number(value: float | None) -> str:
            return "none" if value is None else f"{value:.6f}"

        return {
            "gate.decision": "promoted" if self.promoted else "refused",
            "gate.reason": self.reason,
            "gate.metric": self.metric,
            "gate.margin": str(self.margin),
            "gate.challenger_score": f"{self.challenger_score:.6f}",
            "gate.champion_version": str(self.champion_version),
            "gate.champion_score": number(self.champion_score),
            "gate.basis": self.basis or "none",
            "gate.baseline": str(self.baseline),
            "gate.baseline_score": number(self.baseline_score),
        }


def champion_version(client: MlflowClient, name: str):
    """The registered model's ``champion`` version, or None (no such model, or no champion yet)."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def gate(
    client: MlflowClient,
    t: Task,
    name: str,
    version_: str,
    held_out_score: float,
    against_champion,
    margin: float,
    baseline: BaselineCheck | None = None,
) -> GateDecision:
    """Move ``champion`` to the new version only if it is not worse than the best baseline
    and beats the champion by ``margin``.

    ``baseline``: the challenger against the best plain model on its own held-out rows; one
    worse beyond their noise (``BaselineCheck.below``) is refused whatever the champion.
    ``against_champion(version)`` returns (champion score, challenger score, basis) on the
    same customers.
    """
    current = champion_version(client, name)
    champion_score, challenger_score, basis = None, held_out_score, "held-out part"
    if current is not None:
        champion_score, challenger_score, basis = against_champion(current)
        champion_score, challenger_score = float(champion_score), float(challenger_score)
    below_baseline = baseline is not None and baseline.below
    comparable = current is None or (math.isfinite(challenger_score) and math.isfinite(champion_score))
    beats_champion = current is None or (comparable and challenger_score >= champion_score + margin)
    if not comparable:
        reason = f"cannot be compared with champion v{current.version}: {basis}"
    elif below_baseline:
        reason = (
            f"below the {baseline.baseline} baseline ({held_out_score:.4f} < {baseline.score:.4f}, "
            f"sure at {baseline.confidence:.0%})"
        )
    elif not beats_champion:
        reason = f"does not beat champion v{current.version} ({challenger_score:.4f} vs {champion_score:.4f})"
    elif current is None:
        reason = "first champion" + (f", not below the {baseline.baseline} baseline" if baseline else "")
        if not math.isfinite(held_out_score):
            reason += " (nothing to test it on: no labels or outcomes)"
    else:
        reason = f"beats champion v{current.version} ({challenger_score:.4f} vs {champion_score:.4f})"
    promoted = beats_champion and not below_baseline
    decision = GateDecision(
        promoted,
        str(version_),
        float(challenger_score),
        current.version if current else None,
        champion_score,
        margin,
        t.headline,
        reason,
        basis,
        baseline.baseline if baseline else None,
        baseline.score if baseline else None,
    )
    client.set_registered_model_alias(name, CHAMPION if promoted else CHALLENGER, version_)
    for key, value in decision.as_tags().items():
        client.set_model_version_tag(name, version_, key, value)
    mlflow.set_tags(decision.as_tags())
    mlflow.log_text(json.dumps(decision.__dict__, indent=2, default=str), "gate_decision.json")
    return decision


__all__ = [
    "configure_mlflow",
    "TaskModelPyfunc",
    "log_task_model",
    "load_task_model",
    "gate",
    "GateDecision",
    "champion_version",
]
