"""What a training run tells a reader of MLflow: the data it used, as MLflow datasets, and in words.

Each part of the split (train, validation, test) is logged as an ``mlflow.data`` dataset
whose source is the task's Feast FeatureService: the run's Dataset column names the feature
contract and the snapshot months, and its digest changes when the rows do. The rows
themselves stay in Feast's offline store; the dataset carries their schema and profile.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.dataset_source import DatasetSource

#: MLflow's names for a run's parts, by the split's names.
CONTEXTS = {"train": "training", "valid": "validation", "test": "testing", "fit": "training"}


class FeatureServiceSource(DatasetSource):
    """Rows fetched from Feast by a FeatureService at the snapshot times of ``months``."""

    def __init__(self, feature_service: str, project: str, months: list[str], province: str = "all"):
        self.feature_service = feature_service
        self.project = project
        self.months = list(months)
        self.province = province

    @staticmethod
    def _get_source_type() -> str:
        return "feast"

    def load(self) -> Any:
        raise NotImplementedError(
            f"rows of the Feast FeatureService {self.feature_service} are fetched with "
            "training.data.make_dataset (a point-in-time join), not by MLflow"
        )

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False  # built from a Dataset, never resolved from a string

    @classmethod
    def _resolve(cls, raw_source: Any) -> FeatureServiceSource:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_service": self.feature_service,
            "project": self.project,
            "snapshot_months": self.months,
            "province": self.province,
        }

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> FeatureServiceSource:
        d = source_dict
        return cls(d["feature_service"], d["project"], d["snapshot_months"], d.get("province", "all"))


def months_of(frame: pd.DataFrame) -> list[str]:
    """The snapshot months a frame's rows were taken at."""
    return sorted(frame["month"].astype(str).unique()) if "month" in frame.columns else []


def log_frames(
    frames: dict[str, pd.DataFrame], feature_service: str, project: str, label: str | None, province: str
) -> None:
    """Log each part (``train``, ``valid``, ``test``; ``fit`` for a model fitted without a split)
    as a dataset input of the active run, named by the FeatureService and the part, with the
    snapshot months as source and tags."""
    for part, frame in frames.items():
        months = months_of(frame)
        with warnings.catch_warnings():  # the schema describes the frame; no model input is inferred from it
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
            dataset = mlflow.data.from_pandas(
                frame,
                source=FeatureServiceSource(feature_service, project, months, province),
                targets=label if label in frame.columns else None,
                name=f"{feature_service}-{part}",
            )
        tags = {
            "feature_service": feature_service,
            "snapshot_months": ",".join(months),
            "province": province,
            "rows": str(len(frame)),
        }
        mlflow.log_input(dataset, context=CONTEXTS[part], tags=tags)


def describe_run(lines: list[str]) -> None:
    """The run's description (MLflow's ``mlflow.note.content``, Markdown) from its lines."""
    mlflow.set_tag("mlflow.note.content", "\n".join(lines))


__all__ = ["FeatureServiceSource", "log_frames", "describe_run", "months_of"]
