"""Score customers: champions from the registry, indicators from Feast, business answers out.

Pure apart from the two reads (registry at load, online store per call): ``ModelSet``
holds every task's champion and is replaced whole on reload, so a request always sees
one consistent set. ``answer`` turns predictions into what the agent reads: grade,
sensitivities, churn band, channel ranking, reasons and handling guidance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow import MlflowClient

from core import indicators as lib
from features.labels import CREDIT_GRADES
from features.provinces import ProvinceConfig, load_provinces
from features.store import open_store
from core.errors import TelcomlError
from core.settings import Settings
from training.explain import reasons
from training.model import TaskModel, level, predicted_grade
from training.registry import CHAMPION, load_task_model
from training.tasks import CHURN_BANDS, SENSITIVITY_LEVELS, TASKS

#: Every indicator a model or the key scope needs, fetched in one online lookup.
ONLINE_REFS = [f"{i.subject}:{i.id}" for i in lib.CATALOGUE]


class UnknownCustomer(TelcomlError):
    """No indicators for this number in the online store."""


class StoreUnavailable(TelcomlError):
    """The online store did not answer."""


class Encoder:
    """Every model's input from one float matrix, encoded once per lookup.

    Categories become the library's codes, as in training (``training.data.encode``);
    each model takes its columns of the shared matrix. Replaces five per-model
    DMatrix builds per call: predictions go through ``Booster.inplace_predict``.
    """

    def __init__(self, models: dict[str, TaskModel]):
        position: dict[str, int] = {}
        self.indicators = []
        for model in models.values():
            for ind in model.task.indicators:
                if ind.id not in position:
                    position[ind.id] = len(self.indicators)
                    self.indicators.append(ind)
        self.codes = [{code: float(k) for k, code in enumerate(ind.codes)} if ind.kind == "category" else None
                      for ind in self.indicators]
        self.columns = {name: np.array([position[i] for i in m.task.feature_names]) for name, m in models.items()}
        self.feature_names = {name: m.task.feature_names for name, m in models.items()}
        self.feature_types = {name: ["c" if i.kind == "category" else "q" for i in m.task.indicators]
                              for name, m in models.items()}

    def matrix(self, features: "Features | pd.DataFrame") -> np.ndarray:
        """All indicators the models read, as floats (NaN where missing)."""
        out = np.empty((len(features), len(self.indicators)))
        frame = isinstance(features, pd.DataFrame)
        for j, (ind, codes) in enumerate(zip(self.indicators, self.codes)):
            values = features[ind.id]
            if frame:  # batch scoring: whole columns at once
                if codes is None:
                    out[:, j] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                else:
                    k = pd.Categorical(values, categories=list(ind.codes)).codes
                    out[:, j] = np.where(k >= 0, k, np.nan)
            elif codes is None:
                out[:, j] = [np.nan if v is None else v for v in values]
            else:
                out[:, j] = [codes.get(v, np.nan) if isinstance(v, str) else np.nan for v in values]
        return out

    def model_input(self, name: str, matrix: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(matrix[:, self.columns[name]])

    def dmatrix(self, name: str, model_input: np.ndarray, threads: int) -> xgb.DMatrix:
        """The model's input as a DMatrix (contributions need one)."""
        return xgb.DMatrix(model_input, feature_names=self.feature_names[name], feature_types=self.feature_types[name],
                           enable_categorical=True, missing=np.nan, nthread=threads)


@dataclass(frozen=True)
class ModelSet:
    """The champion of every task, loaded together; replaced whole on reload."""

    models: dict[str, TaskModel]
    versions: dict[str, str]
    loaded_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    encoder: Encoder = field(init=False, repr=False, compare=False)
    #: task -> the registry URI answering it (``models:/telcoml-credit_grade-gd/1``)
    names: dict[str, str] = field(default_factory=dict)
    #: the province's file (cut-offs, guidance) for a province's set
    config: ProvinceConfig | None = None
    #: province -> its set: its own champions where it has them, the national ones otherwise
    provinces: dict[str, "ModelSet"] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoder", Encoder(self.models))

    def probabilities(self, features: "Features | pd.DataFrame",
                      matrix: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every task's probabilities (scores for the sensitivities) from one shared matrix."""
        matrix = self.encoder.matrix(features) if matrix is None else matrix
        return {name: m.calibrate(m.booster.inplace_predict(self.encoder.model_input(name, matrix)))
                for name, m in self.models.items()}

    def for_province(self, province: str | None) -> "ModelSet":
        """The set answering a province's customers (the national one if it has nothing of its own)."""
        return self.provinces.get(str(province), self)

    def grades(self, grade_p: np.ndarray) -> np.ndarray:
        """Grade codes from grade probabilities, with the province's cut-offs when its file has them."""
        if self.config is None or self.config.grade_cutoffs is None:
            return predicted_grade(grade_p)
        expected = grade_p @ np.arange(1, grade_p.shape[1] + 1)
        return 1 + (expected[:, None] >= np.asarray(self.config.grade_cutoffs)[None, :]).sum(axis=1)


def load_champions(settings: Settings, province: str | None = None) -> ModelSet:
    """Every task's ``champion`` from the MLflow registry, national and provincial.

    A province's customers are answered by its own champion of a task when one is
    registered (``telcoml-credit_grade-gd``), else by the national one; a province file's
    cut-offs and guidance apply either way. A task without any champion is left out; no
    champion at all is a clear error. ``province`` gives that province's set directly.
    """
    from training.train import configure_mlflow

    configure_mlflow(settings, "telcoml/serving")
    client = MlflowClient()
    national = _champions(client, None)
    configs = {c.province: c for c in load_provinces(settings)}
    provinces = {}
    for code in sorted(set(configs) | _provinces_with_models(client)):
        own = _champions(client, code)
        merged = {**national, **own}
        if merged:
            provinces[code] = _model_set(merged, configs.get(code))
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
            model.threads = threads
            model.booster.set_param({"nthread": threads})
    return models


def _champions(client: MlflowClient, province: str | None) -> dict[str, tuple[TaskModel, str, str]]:
    """task -> (model, version, registry URI) for the tasks with a champion."""
    found = {}
    for name, t in TASKS.items():
        registered = t.model_name(province)
        try:
            version = str(client.get_model_version_by_alias(registered, CHAMPION).version)
        except Exception:  # the registry says "not found" in several ways: no champion for this task
            continue
        uri = f"models:/{registered}/{version}"
        found[name] = (load_task_model(uri), version, uri)
    return found


def _provinces_with_models(client: MlflowClient) -> set[str]:
    """Provinces with a registered model of their own (``telcoml-<task>-<province>``)."""
    prefixes = [TASKS[name].model_name() + "-" for name in TASKS]
    codes = set()
    for registered in client.search_registered_models(filter_string="name LIKE 'telcoml-%'", max_results=1000):
        for prefix in prefixes:
            if registered.name.startswith(prefix) and registered.name[len(prefix):].isalpha():
                codes.add(registered.name[len(prefix):].upper())
    return codes


def _model_set(entries: dict, config: ProvinceConfig | None, provinces: dict | None = None) -> ModelSet:
    return ModelSet({k: v[0] for k, v in entries.items()}, {k: v[1] for k, v in entries.items()},
                    names={k: v[2] for k, v in entries.items()}, config=config, provinces=provinces or {})


class Features:
    """Online indicators of a list of customers, column by column.

    Object arrays, not a DataFrame: building a one-row frame cost more than the five
    predictions together. ``frame()`` gives pandas to callers that want it.
    """

    def __init__(self, columns: dict[str, np.ndarray], as_of: list[str | None]):
        self.columns = columns
        self.as_of = as_of

    def __len__(self) -> int:
        return len(self.as_of)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    def known(self) -> list[bool]:
        """Customers the online store has indicators for (the profile is always there if any)."""
        return [v is not None for v in self.columns["customer_category"]]

    def take(self, rows: list[int]) -> "Features":
        """The given rows, in that order."""
        return Features({k: v[rows] for k, v in self.columns.items()}, [self.as_of[i] for i in rows])

    def frame(self) -> pd.DataFrame:
        """The indicators as a DataFrame, with ``features_as_of``."""
        return pd.DataFrame({**{k: v.tolist() for k, v in self.columns.items()}, "features_as_of": self.as_of})


class OnlineFeatures:
    """One Feast online lookup for all indicators of a list of customers."""

    def __init__(self, settings: Settings):
        self.store = open_store(settings)
        views = {v.name for v in self.store.list_feature_views()}
        # provinces' own indicators, where their view is registered
        self.refs = ONLINE_REFS + [f"{i.subject}:{i.id}" for c in load_provinces(settings) for i in c.custom
                                   if i.subject in views]

    def fetch(self, msisdns: list[str]) -> Features:
        try:
            result = self.store.get_online_features(features=self.refs,
                                                    entity_rows=[{"msisdn": m} for m in msisdns])
            columns = result.to_dict(include_event_timestamps=True)
        except Exception as err:  # redis/sqlite errors: the store is down or unreadable
            raise StoreUnavailable(f"online feature store unavailable ({type(err).__name__}); retry shortly") from None
        stamps = [columns.pop(c) for c in [c for c in columns if c.endswith("__ts")]]
        latest = [max((s for s in row if s), default=0) for row in zip(*stamps)] if stamps else [0] * len(msisdns)
        # object arrays: values stay as Feast gives them (None where missing)
        return Features({k: _objects(v) for k, v in columns.items()},
                        [datetime.fromtimestamp(s, timezone.utc).isoformat() if s > 0 else None for s in latest])


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def known(features: Features | pd.DataFrame) -> list[bool]:
    """Customers the online store has indicators for (the profile is always there if any)."""
    if isinstance(features, Features):
        return features.known()
    return features["customer_category"].notna().tolist()


GRADE_GUIDANCE = {
    5: ("Fast handling; refund first, verify later; goodwill gift allowed.", "快速处理，先退费后核实，可适当赠送。"),
    4: ("Fast handling; refund after a light check; reopening before payment allowed.",
        "快速处理，简单核实后退费；欠费停机可先开机后缴费。"),
    3: ("Standard complaint process.", "按标准流程处理投诉。"),
    2: ("Verify the claim before any refund.", "退费前须先查证。"),
    1: ("Verify the claim before any refund; escalate to a supervisor; no goodwill gifts.",
        "退费前须先查证并上报班长；不予赠送。"),
}


def guidance(grade: int | None, tariff_level: str | None, complaint_level: str | None, churn_band: str | None,
             ranking: list[str] | None, config: ProvinceConfig | None = None) -> list[dict]:
    """The differentiated handling guidance of the documents, in both languages.

    A province's file replaces the text for a grade; evaluations without a model (None)
    add nothing.
    """
    items = []
    if grade is not None:
        own = config.guidance.get(grade) if config else None
        en, zh = (own.en, own.zh) if own else GRADE_GUIDANCE[grade]
        items.append({"topic": "complaint_handling", "text_en": en, "text_zh": zh})
    if complaint_level == "high":
        items.append({"topic": "complaint_first", "text_en": "Complaint-sensitive: attend to the complaint first.",
                      "text_zh": "投诉敏感客户：优先处理投诉诉求。"})
    if tariff_level == "high":
        items.append({"topic": "no_recommendation", "text_en": "Tariff-sensitive: do not recommend plans or new services.",
                      "text_zh": "话费敏感客户：不推荐套餐或新业务。"})
    elif grade is not None and grade >= 3 and complaint_level != "high":
        items.append({"topic": "opportunity_marketing", "text_en": "Opportunity marketing allowed on this call.",
                      "text_zh": "可进行随销推荐。"})
    if churn_band == "high":
        items.append({"topic": "retention", "text_en": "High churn risk: offer the retention (保有) package.",
                      "text_zh": "高流失风险：推荐保有方案。"})
    if ranking:
        waves = " → ".join(ranking[:3])
        items.append({"topic": "campaign_waves", "text_en": f"Campaign service waves: {waves}.",
                      "text_zh": f"营销服务波次：{waves}。"})
    return items


def customer_answer(msisdn: str, province: str, scored: dict, models: ModelSet, features_as_of: str | None,
                    answered_from: str) -> dict:
    """The whole answer about one customer: ``score_frame``'s evaluations and their provenance."""
    return {"msisdn": msisdn, "province": province, **scored, "model_versions": models.versions,
            "models": models.names, "features_as_of": features_as_of, "answered_from": answered_from}


#: Evaluations whose answers carry reasons unless the caller asks for fewer.
REASON_TASKS = tuple(TASKS)


def score_frame(models: ModelSet, features: "Features | pd.DataFrame", top_reasons: int = 3,
                reason_tasks: tuple[str, ...] = REASON_TASKS) -> list[dict]:
    """Every evaluation for each row of ``features`` (customers the store knows).

    One float matrix feeds all five models; SHAP contributions (a DMatrix each) are
    computed only for the evaluations in ``reason_tasks``.
    """
    encoder = models.encoder
    matrix = encoder.matrix(features)
    probabilities, explained = {}, {}
    for name, model in models.models.items():
        model_input = encoder.model_input(name, matrix)
        probabilities[name] = model.calibrate(model.booster.inplace_predict(model_input))
        if name in reason_tasks:
            contributions = model.contributions(None, encoder.dmatrix(name, model_input, model.threads))
            explained[name] = reasons(model, features, top=top_reasons, contributions=contributions,
                                      probabilities=probabilities[name])
        else:
            explained[name] = [[] for _ in range(len(features))]
    grade_p = probabilities.get("credit_grade")
    grades = models.grades(grade_p) if grade_p is not None else None
    grade_names = {g[0]: (g[1], g[2]) for g in CREDIT_GRADES}
    channels = probabilities.get("channel_preference")
    out = []
    for i in range(len(features)):
        answer: dict = {}
        grade = int(grades[i]) if grades is not None else None
        if grade is not None:
            answer["credit_grade"] = {"code": grade, "label_zh": grade_names[grade][0],
                                      "label_en": grade_names[grade][1],
                                      "probabilities": {str(k + 1): round(float(grade_p[i, k]), 4) for k in range(5)},
                                      "reasons": explained["credit_grade"][i]}
        for name in ("tariff_sensitivity", "complaint_sensitivity"):
            if name in probabilities:
                score = float(probabilities[name][i])
                level_en, level_zh = level(score, SENSITIVITY_LEVELS)
                answer[name] = {"score": round(score, 1), "level": level_en, "level_zh": level_zh,
                                "population_average": round(models.models[name].population_average or 0.0, 1),
                                "reasons": explained[name][i]}
        if "churn" in probabilities:
            churn_p = float(probabilities["churn"][i])
            band_en, band_zh = level(churn_p, CHURN_BANDS)
            answer["churn"] = {"probability": round(churn_p, 4), "band": band_en, "band_zh": band_zh,
                               "reasons": explained["churn"][i]}
        ranking = None
        if channels is not None:
            ranking = [lib.CHANNELS[k] for k in np.argsort(-channels[i])]
            answer["channel_preference"] = {"ranking": ranking, "best_channel": ranking[0],
                                            "probabilities": {c: round(float(channels[i, k]), 4)
                                                              for k, c in enumerate(lib.CHANNELS)},
                                            "reasons": explained["channel_preference"][i]}
        answer["guidance"] = guidance(grade, answer.get("tariff_sensitivity", {}).get("level"),
                                      answer.get("complaint_sensitivity", {}).get("level"),
                                      answer.get("churn", {}).get("band"), ranking, models.config)
        out.append(answer)
    return out
