"""The champions answering the CRM: every task's ``champion`` from the registry, national
and provincial, loaded together and replaced whole on reload.

``ModelSet`` also holds the one float matrix encoder its models share, so a lookup is
encoded once for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from core import indicators as lib
from core.errors import TelcomlError
from core.settings import Settings
from core.tasks import TASKS
from features.provinces import ProvinceConfig, load_provinces
from serving.retention import RetentionCutoff, read_cutoff
from training.model import TaskModel

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from pyspark import Broadcast


class Encoder:
    """Every model's input from one float matrix, encoded once per lookup.

    Each indicator is encoded by the library's rule (``core.indicators.encoded``, as in
    training); each model takes its columns of the shared matrix. Predictions go through
    ``serve`` (``Booster.inplace_predict`` for XGBoost, the scorecard's weighted sum).
    """

    def __init__(self, models: dict[str, TaskModel]):
        position: dict[str, int] = {}
        self.indicators: list[lib.Indicator] = []
        for model in models.values():
            for ind in model.task.indicators:
                if ind.id not in position:
                    position[ind.id] = len(self.indicators)
                    self.indicators.append(ind)
        self.columns = {
            name: np.array([position[i] for i in m.task.feature_names]) for name, m in models.items()
        }

    def matrix(self, features) -> np.ndarray:
        """All indicators the models read, as floats (NaN where missing); ``features`` is a
        DataFrame or ``serving.online.Features``."""
        out = np.empty((len(features), len(self.indicators)))
        for j, ind in enumerate(self.indicators):
            out[:, j] = lib.encoded(ind, features[ind.id])
        return out

    def model_input(self, name: str, matrix: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(matrix[:, self.columns[name]])


@dataclass(frozen=True)
class ModelSet:
    """The champion of every task, loaded together; replaced whole on reload."""

    models: dict[str, TaskModel]
    versions: dict[str, str]
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    encoder: Encoder = field(init=False, repr=False, compare=False)
    #: task -> the registry URI answering it (``models:/telcoml-credit_grade-gd/1``)
    names: dict[str, str] = field(default_factory=dict)
    #: the province's file (cut-offs, guidance) for a province's set
    config: ProvinceConfig | None = None
    #: province -> its set: its own champions where it has them, the national ones otherwise
    provinces: dict[str, ModelSet] = field(default_factory=dict)
    #: the province's retention list cut-off (``telcoml retention``): who gets the retention advice
    retention: RetentionCutoff | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoder", Encoder(self.models))

    @property
    def methods(self) -> dict[str, str]:
        """task -> how its champion answers (``xgboost``, ``scorecard``)."""
        return {name: m.method for name, m in self.models.items()}

    def probabilities(self, features, matrix: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every task's calibrated output from one shared matrix."""
        matrix = self.encoder.matrix(features) if matrix is None else matrix
        return {name: m.serve(self.encoder.model_input(name, matrix)) for name, m in self.models.items()}

    def for_province(self, province: str | None) -> ModelSet:
        """The set answering a province's customers (the national one if it has nothing of its own)."""
        return self.provinces.get(str(province), self)


def load_champions(settings: Settings, province: str | None = None) -> ModelSet:
    """Every task's ``champion`` from the MLflow registry, national and provincial.

    A province's customers are answered by its own champion of a task when one is
    registered (``telcoml-credit_grade-gd``), else by the national one; a province file's
    cut-offs and guidance apply either way. A task without any champion is left out; no
    champion at all is a clear error. ``province`` gives that province's set directly.
    """
    from mlflow import MlflowClient  # here, not above: a Spark executor unpickles a set without MLflow

    from training.registry import configure_mlflow

    configure_mlflow(settings)  # the registry only: serving logs no run
    client = MlflowClient()
    national = _champions(client, None)
    configs = {c.province: c for c in load_provinces(settings)}
    provinces = {}
    for code in sorted(set(configs) | _provinces_with_models(client) | _provinces_with_lists(settings)):
        merged = {**national, **_champions(client, code)}
        if merged:
            provinces[code] = _model_set(
                merged, configs.get(code), retention=read_cutoff(settings.workdir, code)
            )
    if not national and not provinces:
        raise TelcomlError(f"no champion in {settings.tracking_uri}: run `telcoml train` first")
    models = _model_set(national, None, provinces)
    return models.for_province(province.upper()) if province else models


def with_threads(models: ModelSet, threads: int) -> ModelSet:
    """Set every model's XGBoost threads (0: all cores), provinces' sets included, in place.

    The service keeps one thread per model (requests run side by side); a batch job that
    loaded its own set gives each model the whole machine.
    """
    for model_set in (models, *models.provinces.values()):
        for model in model_set.models.values():
            model.use_threads(threads)
    return models


def partition_champions(shipped: Broadcast[bytes]) -> ModelSet:
    """The champions as a Spark partition answers with them (``serving.spark_batch``,
    ``serving.spark_prepare``): the set the driver loaded once and broadcast (``core.spark.ship``),
    so every partition answers with the same versions and no executor reads the registry (nor
    imports MLflow), with one XGBoost thread per model (a task slot's core)."""
    from core.spark import received  # here: the service's image leaves the Spark modules out

    return with_threads(received(shipped), 1)


def _champions(client: MlflowClient, province: str | None) -> dict[str, tuple[TaskModel, str, str]]:
    """task -> (model, version, registry URI) for the tasks with a champion."""
    from training.registry import champion_version, load_task_model

    found = {}
    for name, t in TASKS.items():
        registered = t.model_name(province)
        champion = champion_version(client, registered)
        if champion is not None:
            uri = f"models:/{registered}/{champion.version}"
            found[name] = (load_task_model(uri), str(champion.version), uri)
    return found


def _provinces_with_models(client: MlflowClient) -> set[str]:
    """Provinces with a registered model of their own (``telcoml-<task>-<province>``)."""
    prefixes = [t.model_name() + "-" for t in TASKS.values()]
    codes = set()
    for registered in client.search_registered_models(
        filter_string="name LIKE 'telcoml-%'", max_results=1000
    ):
        for prefix in prefixes:
            if registered.name.startswith(prefix) and registered.name[len(prefix) :].isalpha():
                codes.add(registered.name[len(prefix) :].upper())
    return codes


def _provinces_with_lists(settings: Settings) -> set[str]:
    """Provinces with a retention list's cut-off (their customers' retention advice reads it)."""
    return {p.stem.removeprefix("cutoff_") for p in (settings.workdir / "retention").glob("cutoff_*.json")}


def _model_set(
    entries: dict, config: ProvinceConfig | None, provinces: dict | None = None, retention=None
) -> ModelSet:
    return ModelSet(
        {k: v[0] for k, v in entries.items()},
        {k: v[1] for k, v in entries.items()},
        names={k: v[2] for k, v in entries.items()},
        config=config,
        provinces=provinces or {},
        retention=retention,
    )
