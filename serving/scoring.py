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
from mlflow import MlflowClient

from features import indicators as lib
from features.labels import CREDIT_GRADES
from features.store import open_store
from telcoml.errors import TelcomlError
from telcoml.settings import Settings
from training.explain import reasons
from training.model import TaskModel, level, predicted_grade
from training.registry import CHAMPION, load_task_model
from training.tasks import CHURN_BANDS, SENSITIVITY_LEVELS, TASKS

MSISDN_PATTERN = re.compile(r"^1[3-9]\d{9}$")
#: Every indicator a model or the key scope needs, fetched in one online lookup.
ONLINE_REFS = [f"{i.subject}:{i.id}" for i in lib.CATALOGUE]


class UnknownCustomer(TelcomlError):
    """No indicators for this number in the online store."""


class StoreUnavailable(TelcomlError):
    """The online store did not answer."""


@dataclass(frozen=True)
class ModelSet:
    """The champion of every task, loaded together; replaced whole on reload."""

    models: dict[str, TaskModel]
    versions: dict[str, str]
    loaded_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


def load_champions(settings: Settings, province: str | None = None) -> ModelSet:
    """Each task's ``champion`` from the MLflow registry (a missing one is a clear error)."""
    from training.train import configure_mlflow

    configure_mlflow(settings, "telcoml/serving")
    client = MlflowClient()
    models, versions = {}, {}
    for name, t in TASKS.items():
        registered = t.model_name(province)
        try:
            version = client.get_model_version_by_alias(registered, CHAMPION).version
        except Exception as err:  # the registry says "not found" in several ways
            raise TelcomlError(f"no champion for {registered} in {settings.tracking_uri}: "
                               f"run `telcoml train` first ({type(err).__name__})") from None
        models[name] = load_task_model(f"models:/{registered}/{version}")
        versions[name] = str(version)
    return ModelSet(models, versions)


class OnlineFeatures:
    """One Feast online lookup for all indicators of a list of customers."""

    def __init__(self, settings: Settings):
        self.store = open_store(settings)

    def fetch(self, msisdns: list[str]) -> pd.DataFrame:
        try:
            result = self.store.get_online_features(features=ONLINE_REFS,
                                                    entity_rows=[{"msisdn": m} for m in msisdns])
            frame = pd.DataFrame(result.to_dict(include_event_timestamps=True))
        except Exception as err:  # redis/sqlite errors: the store is down or unreadable
            raise StoreUnavailable(f"online feature store unavailable ({type(err).__name__}); retry shortly") from None
        stamps = frame[[c for c in frame.columns if c.endswith("__ts")]]
        latest = stamps.max(axis=1)
        frame = frame.drop(columns=stamps.columns)
        frame["features_as_of"] = [datetime.fromtimestamp(s, timezone.utc).isoformat() if s and s > 0 else None
                                   for s in latest]
        return frame


def known(frame: pd.DataFrame) -> pd.Series:
    """Customers the online store has indicators for (the profile is always there if any)."""
    return frame["customer_category"].notna()


GRADE_GUIDANCE = {
    5: ("Fast handling; refund first, verify later; goodwill gift allowed.", "快速处理，先退费后核实，可适当赠送。"),
    4: ("Fast handling; refund after a light check; reopening before payment allowed.",
        "快速处理，简单核实后退费；欠费停机可先开机后缴费。"),
    3: ("Standard complaint process.", "按标准流程处理投诉。"),
    2: ("Verify the claim before any refund.", "退费前须先查证。"),
    1: ("Verify the claim before any refund; escalate to a supervisor; no goodwill gifts.",
        "退费前须先查证并上报班长；不予赠送。"),
}


def guidance(grade: int, tariff_level: str, complaint_level: str, churn_band: str,
             ranking: list[str]) -> list[dict]:
    """The differentiated handling guidance of the documents, in both languages."""
    en, zh = GRADE_GUIDANCE[grade]
    items = [{"topic": "complaint_handling", "text_en": en, "text_zh": zh}]
    if complaint_level == "high":
        items.append({"topic": "complaint_first", "text_en": "Complaint-sensitive: attend to the complaint first.",
                      "text_zh": "投诉敏感客户：优先处理投诉诉求。"})
    if tariff_level == "high":
        items.append({"topic": "no_recommendation", "text_en": "Tariff-sensitive: do not recommend plans or new services.",
                      "text_zh": "话费敏感客户：不推荐套餐或新业务。"})
    elif grade >= 3 and complaint_level != "high":
        items.append({"topic": "opportunity_marketing", "text_en": "Opportunity marketing allowed on this call.",
                      "text_zh": "可进行随销推荐。"})
    if churn_band == "high":
        items.append({"topic": "retention", "text_en": "High churn risk: offer the retention (保有) package.",
                      "text_zh": "高流失风险：推荐保有方案。"})
    waves = " → ".join(ranking[:3])
    items.append({"topic": "campaign_waves", "text_en": f"Campaign service waves: {waves}.",
                  "text_zh": f"营销服务波次：{waves}。"})
    return items


def score_frame(models: ModelSet, features: pd.DataFrame, top_reasons: int = 3) -> list[dict]:
    """Every evaluation for each row of ``features`` (customers the store knows).

    One input matrix per model serves both the prediction and its contributions.
    """
    probabilities, explained = {}, {}
    for name, model in models.models.items():
        matrix = model.matrix(features)
        probabilities[name] = model.probabilities(features, matrix)
        explained[name] = reasons(model, features, top=top_reasons, contributions=model.contributions(features, matrix),
                                  probabilities=probabilities[name])
    grade_p = probabilities["credit_grade"]
    grades = predicted_grade(grade_p)
    grade_names = {g[0]: (g[1], g[2]) for g in CREDIT_GRADES}
    channels = probabilities["channel_preference"]
    out = []
    for i in range(len(features)):
        grade = int(grades[i])
        sens = {}
        for name in ("tariff_sensitivity", "complaint_sensitivity"):
            score = float(probabilities[name][i])
            level_en, level_zh = level(score, SENSITIVITY_LEVELS)
            sens[name] = {"score": round(score, 1), "level": level_en, "level_zh": level_zh,
                          "population_average": round(models.models[name].population_average or 0.0, 1),
                          "reasons": explained[name][i]}
        churn_p = float(probabilities["churn"][i])
        band_en, band_zh = level(churn_p, CHURN_BANDS)
        ranking = [lib.CHANNELS[k] for k in np.argsort(-channels[i])]
        out.append({
            "credit_grade": {"code": grade, "label_zh": grade_names[grade][0], "label_en": grade_names[grade][1],
                             "probabilities": {str(k + 1): round(float(grade_p[i, k]), 4) for k in range(5)},
                             "reasons": explained["credit_grade"][i]},
            "tariff_sensitivity": sens["tariff_sensitivity"],
            "complaint_sensitivity": sens["complaint_sensitivity"],
            "churn": {"probability": round(churn_p, 4), "band": band_en, "band_zh": band_zh,
                      "reasons": explained["churn"][i]},
            "channel_preference": {"ranking": ranking, "best_channel": ranking[0],
                                   "probabilities": {c: round(float(channels[i, k]), 4)
                                                     for k, c in enumerate(lib.CHANNELS)},
                                   "reasons": explained["channel_preference"][i]},
            "guidance": guidance(grade, sens["tariff_sensitivity"]["level"], sens["complaint_sensitivity"]["level"],
                                 band_en, ranking),
        })
    return out
