"""Model health (模型健康): which champion answers each province and task, how it scored when it was
promoted, and what the weekly monitoring said of it.

* **Champions**: for each province the key may see, each evaluation's champion as serving holds it
  (the province's own or the national one, its registry URI, method and version, loaded when) and
  its held-out score, the registry's ``held_out_score`` tag set by ``telcoml train``.
* **Weekly monitoring**: a chosen week's ``summary.csv`` (``monitoring.weekly``: drift, quality
  against the held-out score, business rates, data quality, ALERT or ok), and that week's alerts
  with the action they advise; only the key's province for a one-province key.

``champion_rows`` and ``weekly_rows`` are pure (plain data in, plain dicts out); the handler reads
the registry and the report files.
"""

from __future__ import annotations

import json
import re
import threading

import pandas as pd

from core.tasks import TASKS
from features.build import offline_snapshots
from monitoring.record import monitoring_dir
from serving.console.pages import Page, Visit
from serving.console.words import Language, Vocabulary
from serving.security import may_score

#: A weekly report's folder name (``2026-W44``): the only week names the page accepts.
WEEK = re.compile(r"^\d{4}-W\d{2}$")
#: Weeks offered in the form, newest first.
WEEKS_SHOWN = 26
#: The summary's columns shown, in order.
SUMMARY_COLUMNS = (
    "champion",
    "customers",
    "drifted",
    "prediction_drift",
    "quality",
    "outcome",
    "business_rates",
    "data_quality",
    "top_moved",
)
WORDS = Vocabulary(
    {
        "champions": ("冠军模型", "Champions"),
        "weekly": ("每周监控", "Weekly monitoring"),
        "alerts": ("告警", "Alerts"),
        "province": ("省份", "Province"),
        "evaluation": ("评价", "Evaluation"),
        "model": ("模型", "Model"),
        "method": ("方法", "Method"),
        "version": ("版本", "Version"),
        "own": ("本省模型", "the province's own"),
        "national": ("全国模型", "national"),
        "held_out": ("上线时留出集得分", "Held-out score at promotion"),
        "loaded_at": ("加载时间", "Loaded at"),
        "week": ("周", "Week"),
        "show": ("查看", "Show"),
        "status": ("状态", "Status"),
        "no_weekly": (
            "尚无每周监控报告（telcoml monitor 生成）",
            "No weekly monitoring report yet (telcoml monitor writes them)",
        ),
        "no_alerts": ("本周无告警", "No alert this week"),
        "bad_choice": ("选项无效，已显示最近一周", "Not one of the weeks: the latest is shown"),
        "action": ("建议", "Action"),
        "champion": ("冠军", "Champion"),
        "customers": ("客户数", "Customers"),
        "drifted": ("漂移指标", "Drifted indicators"),
        "prediction_drift": ("预测漂移", "Prediction drift"),
        "quality": ("模型质量", "Quality"),
        "outcome": ("实际结果", "Outcome"),
        "business_rates": ("业务比率", "Business rates"),
        "data_quality": ("数据质量", "Data quality"),
        "top_moved": ("变化最大的指标", "Moved most"),
    }
)


def _task_title(name: str, lang: Language) -> str:
    t = TASKS.get(name)
    return (t.name_zh if lang == "zh" else t.name_en) if t else name


def registry_name(uri: str) -> str:
    """The registered model's name in ``models:/NAME/VERSION``."""
    return uri.removeprefix("models:/").rsplit("/", 1)[0]


# -- pure ---------------------------------------------------------------------------------------


def champion_rows(
    champions: dict[str, dict],
    scores: dict[tuple[str, str], str | None],
    lang: Language,
    mlflow_ui: str | None = None,
) -> list:
    """One row per province and task, in the tasks' declared order. ``champions``: province ->
    ``{"uris": task -> URI, "methods": task -> method, "versions": task -> version, "loaded_at"}``;
    ``scores``: (registered name, version) -> the held-out score tag (None when absent);
    ``mlflow_ui``: the MLflow UI's address, for a link to each version's page."""
    rows = []
    for province in sorted(champions):
        held = champions[province]
        for task in (t for t in TASKS if t in held["uris"]):
            name = registry_name(held["uris"][task])
            version = str(held["versions"][task])
            score = scores.get((name, version))
            rows.append(
                {
                    "province": province,
                    "task": task,
                    "title": _task_title(task, lang),
                    "uri": held["uris"][task],
                    "own": name == TASKS[task].model_name(province),
                    "method": held["methods"][task],
                    "version": version,
                    "metric": TASKS[task].headline,
                    "held_out": f"{float(score):.4f}" if score not in (None, "") else "—",
                    "loaded_at": held["loaded_at"],
                    "link": f"{mlflow_ui.rstrip('/')}/#/models/{name}/versions/{version}"
                    if mlflow_ui
                    else None,
                }
            )
    return rows


def weekly_rows(summary: pd.DataFrame, scope: str, lang: Language) -> list[dict]:
    """The week's summary rows the key may see, alerts first, each with its evaluation's title."""
    rows = []
    for record in summary.to_dict("records"):
        if not may_score(scope, str(record.get("province"))):
            continue
        rows.append(
            {
                "province": record["province"],
                "task": record["task"],
                "title": _task_title(record["task"], lang),
                "alert": record.get("status") == "ALERT",
                "cells": ["—" if pd.isna(record.get(c)) else str(record.get(c)) for c in SUMMARY_COLUMNS],
            }
        )
    return sorted(
        rows,
        key=lambda r: (
            not r["alert"],
            r["province"],
            list(TASKS).index(r["task"]) if r["task"] in TASKS else 99,
        ),
    )


def scoped_alerts(alerts: list[dict], scope: str, lang: Language) -> list[dict]:
    """The week's alerts the key may see: province, evaluation, breaches, the advised action."""
    return [
        {
            "province": a.get("province"),
            "title": _task_title(str(a.get("task")), lang),
            "breaches": "; ".join(
                f"{b.get('check')} {b.get('value')} ≥ {b.get('threshold')}" for b in a.get("breaches", [])
            ),
            "action": a.get("action", ""),
        }
        for a in alerts
        if may_score(scope, str(a.get("province")))
    ]


def choose_week(form: dict[str, str] | None, weeks: list[str]) -> tuple[str | None, bool]:
    """The week asked for if it is one of ``weeks`` (newest first), else the newest and False."""
    latest = weeks[0] if weeks else None
    if not form or "week" not in form:
        return latest, True
    return (form["week"], True) if form["week"] in weeks else (latest, False)


# -- I/O ----------------------------------------------------------------------------------------

_scores: dict[tuple[str, str, str], str | None] = {}
_scores_lock = threading.Lock()


def held_out_scores(settings, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """Each (name, version)'s ``held_out_score`` tag from the registry (a version's tags are set
    once, at training: kept in memory)."""
    missing = [k for k in keys if (str(settings.workdir), *k) not in _scores]
    if missing:
        from mlflow import MlflowClient

        from training.registry import configure_mlflow

        configure_mlflow(settings)
        client = MlflowClient()
        for name, version in missing:
            tag = client.get_model_version(name, version).tags.get("held_out_score")
            with _scores_lock:
                _scores[(str(settings.workdir), name, version)] = tag
    return {k: _scores[(str(settings.workdir), *k)] for k in keys}


def report_weeks(settings) -> list[str]:
    """Weeks with a weekly summary, newest first."""
    folder = monitoring_dir(settings) / "reports"
    if not folder.is_dir():
        return []
    weeks = [p.name for p in folder.iterdir() if WEEK.match(p.name) and (p / "summary.csv").is_file()]
    return sorted(weeks, reverse=True)[:WEEKS_SHOWN]


def handle(visit: Visit) -> dict:
    lang, backend = visit.lang, visit.backend
    provinces = sorted(
        {p for p, _ in offline_snapshots(backend.settings.offline_dir) if may_score(visit.scope, p)}
    )
    champions = {}
    for province in provinces:
        models = backend.models.for_province(province)
        champions[province] = {
            "uris": dict(models.names),
            "methods": models.methods,
            "versions": dict(models.versions),
            "loaded_at": models.loaded_at,
        }
    keys = {
        (registry_name(held["uris"][t]), str(held["versions"][t]))
        for held in champions.values()
        for t in held["uris"]
    }
    weeks = report_weeks(backend.settings)
    week, valid = choose_week(visit.form, weeks)
    context: dict = {
        "w": WORDS.in_language(lang),
        "columns": [WORDS.word(c, lang) for c in SUMMARY_COLUMNS],
        "champions": champion_rows(
            champions, held_out_scores(backend.settings, keys), lang, backend.settings.mlflow_ui_url
        ),
        "evidently_ui": backend.settings.evidently_ui_url,
        "weeks": weeks,
        "week": week,
        "weekly": None,
        "alerts": [],
    }
    if not valid:
        context.update(error="bad_choice", status=422)
    if week is not None:
        folder = monitoring_dir(backend.settings) / "reports" / week
        context["weekly"] = weekly_rows(pd.read_csv(folder / "summary.csv"), visit.scope, lang)
        alerts_file = folder / "alerts.json"
        if alerts_file.is_file():
            context["alerts"] = scoped_alerts(json.loads(alerts_file.read_text()), visit.scope, lang)
    return context


PAGE = Page("/health", "模型健康", "Model health", "health.html", handle)

__all__ = ["PAGE", "champion_rows", "choose_week", "scoped_alerts", "weekly_rows"]
