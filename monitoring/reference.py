"""The champion's reference: the held-out month it was tested on, logged with the model.

Training logs ``monitoring/reference.parquet`` in the model's run: the indicators the
model reads, the province, the label and the model's own prediction on those rows, in
the same columns serving records. The weekly job compares each week's records with it.

Why the test month and not the fitting months: it is the latest data the champion was
judged on, so a week that looks like it is a week the test score still describes. The
fitting months lie further back; in the synthetic warehouse their 12-month windows are
still filling (history starts with the first generated month), which shows as drift
that no customer caused.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from core import indicators as lib
from monitoring.record import PREDICTION_COLUMNS
from core.errors import NotReadyError
from core.settings import Settings
from training.model import TaskModel, predicted_grade

REFERENCE_ARTIFACT = "monitoring/reference.parquet"
#: Rows kept: enough for stable drift tests, small in the registry.
REFERENCE_ROWS = 50_000


def task_prediction(task_name: str, probabilities: np.ndarray) -> np.ndarray:
    """A task's recorded prediction: grade code, score, churn probability or best channel."""
    if task_name == "credit_grade":
        return predicted_grade(probabilities)
    if task_name == "channel_preference":
        return np.asarray(lib.CHANNELS, dtype=object)[np.argmax(probabilities, axis=1)]
    if task_name in ("tariff_sensitivity", "complaint_sensitivity"):
        return np.round(probabilities, 1)
    return np.round(probabilities, 4)


def reference_frame(model: TaskModel, rows: pd.DataFrame, label: str, max_rows: int = REFERENCE_ROWS,
                    seed: int = 0) -> pd.DataFrame:
    """Indicators, province, label (as ``target``) and prediction of a sample of ``rows``."""
    if len(rows) > max_rows:
        rows = rows.sample(max_rows, random_state=seed)
    indicators = list(model.booster.feature_names or model.task.feature_names)
    frame = rows[["province", *indicators]].reset_index(drop=True).copy()
    frame["target"] = rows[label].to_numpy()
    frame[PREDICTION_COLUMNS[model.task.name]] = task_prediction(model.task.name, model.probabilities(rows[indicators]))
    return frame


def log_reference(model: TaskModel, rows: pd.DataFrame, label: str) -> None:
    """Log the reference into the active MLflow run (call inside the training run)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        reference_frame(model, rows, label).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))


def load_reference(settings: Settings, model_name: str, version: str) -> pd.DataFrame:
    """A registered version's reference, cached in the work directory."""
    cache = settings.workdir / "monitoring" / "reference" / f"{model_name}-v{version}.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    run_id = MlflowClient().get_model_version(model_name, version).run_id
    try:
        downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT)
    except Exception:  # MLflow raises several types for a missing artifact
        raise NotReadyError(f"{model_name} version {version} has no logged reference ({REFERENCE_ARTIFACT}); "
                            "retrain it with `telcoml train` so monitoring has something to compare with") from None
    frame = pd.read_parquet(downloaded)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(cache)
    return frame
