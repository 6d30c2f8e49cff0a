"""The registry's pyfunc: a task model that loads outside this checkout.

A registered model carries the code it unpickles (``MODEL_CODE``: the ``core`` and
``training`` packages, logged as the model's ``code_paths``) and pins every distribution
that code imports when it loads and predicts (``model_requirements``), so
``mlflow models serve`` works from a fresh virtual environment with nothing but the
model's ``requirements.txt``. This module imports only what loading needs.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd

from training.model import load_model

#: The packages a logged model's pickle and its ``task_model`` loader import from.
MODEL_CODE = tuple(str(Path(__file__).resolve().parents[1] / package) for package in ("core", "training"))

#: Distributions that code imports to load and predict (numbers, frames, the booster, the task
#: declarations' pydantic types), plus MLflow's own serving and unpickling; a fresh virtual
#: environment with these alone serves the model (tests/model/test_tracking.py).
MODEL_DISTRIBUTIONS = ("mlflow", "cloudpickle", "numpy", "pandas", "pydantic", "xgboost")


def model_requirements() -> list[str]:
    """``MODEL_DISTRIBUTIONS`` pinned at the versions installed here (what the model was tested with)."""
    return [f"{name}=={version(name)}" for name in MODEL_DISTRIBUTIONS]


class TaskModelPyfunc(mlflow.pyfunc.PythonModel):
    """The registry's view of a model of either method: indicators in, business outputs out."""

    def load_context(self, context):
        self.model = load_model(context.artifacts["task_model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict(model_input)


__all__ = ["TaskModelPyfunc", "MODEL_CODE", "model_requirements"]
