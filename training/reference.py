"""The champion's reference: the held-out month it was tested on, logged with the model.

Training logs ``monitoring/reference.parquet`` in the model's run: the indicators the
model reads, the province, the label and the model's own prediction on those rows, in
the same columns serving records. The weekly job (``monitoring.reference``) compares
each week's records with it.

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
import pandas as pd

from training.model import TaskModel

REFERENCE_ARTIFACT = "monitoring/reference.parquet"
#: Rows kept: enough for stable drift tests, small in the registry.
REFERENCE_ROWS = 50_000


def reference_frame(
    model: TaskModel, rows: pd.DataFrame, label: str, max_rows: int = REFERENCE_ROWS, seed: int = 0
) -> pd.DataFrame:
    """Indicators, province, label (as ``target``) and prediction of a sample of ``rows``."""
    if len(rows) > max_rows:
        rows = rows.sample(max_rows, random_state=seed)
    indicators = list(model.booster.feature_names or model.task.feature_names)
    frame = rows[list(dict.fromkeys(["province", *indicators]))].reset_index(drop=True).copy()
    frame["target"] = rows[label].to_numpy()
    frame[model.task.prediction_column] = model.task.kind.decide(model.probabilities(rows[indicators]))
    return frame


def log_reference(model: TaskModel, rows: pd.DataFrame, label: str) -> None:
    """Log the reference into the active MLflow run (call inside the training run)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        reference_frame(model, rows, label).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))
