"""The champion's reference, as the weekly job reads it (``training.reference`` logs it).

Downloaded once per registered version and cached in the work directory.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow import MlflowClient

from core.errors import NotReadyError
from core.settings import Settings
from training.reference import REFERENCE_ARTIFACT


def load_reference(settings: Settings, model_name: str, version: str) -> pd.DataFrame:
    """A registered version's reference, cached in the work directory."""
    cache = settings.workdir / "monitoring" / "reference" / f"{model_name}-v{version}.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    run_id = MlflowClient().get_model_version(model_name, version).run_id
    try:
        downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT)
    except Exception:  # MLflow raises several types for a missing artifact
        raise NotReadyError(
            f"{model_name} version {version} has no logged reference ({REFERENCE_ARTIFACT}); "
            "retrain it with `telcoml train` so monitoring has something to compare with"
        ) from None
    frame = pd.read_parquet(downloaded)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(cache)
    return frame
