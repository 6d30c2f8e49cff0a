"""The exported campaigns of the key's province and each one's response report: the uplift over the
control group with its 95% interval, the take-up of both groups, the answers per wave and channel,
the best contact frequency and the uplift per best channel (a plotly chart with error bars).

``serving.campaign_report.report_campaign`` measures (without logging to MLflow: a page view is no
report of record); ``campaign_list`` and ``report_view`` are pure.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import plotly.graph_objects as go

from core import indicators as lib
from core.errors import TelcomlError
from core.logs import get_logger
from serving.campaign_config import CAMPAIGN_NAME
from serving.campaign_report import report_campaign
from serving.console.campaign_words import CAMPAIGN_WORDS
from serving.console.campaigns import figure_json
from serving.console.pages import Page, Visit
from serving.console.words import Language
from serving.security import may_score

log = get_logger("telcoml.console")

#: The most campaigns the list shows (newest first).
MAX_LISTED = 200
#: The answer tables' columns the page shows, in order.
TABLE_COLUMNS = (
    "attempts",
    "reached",
    "accepted",
    "undecided",
    "reach_rate",
    "acceptance_rate",
    "objection_rate",
)


def campaign_list(definitions: list[dict], scope: str) -> list[dict]:
    """The campaigns (their definitions, as exported) the key may see, newest start first."""
    seen = [d for d in definitions if may_score(scope, d.get("province"))]
    return sorted(seen, key=lambda d: (str(d.get("start")), d["name"]), reverse=True)[:MAX_LISTED]


def exported_definitions(settings) -> list[dict]:
    """Every exported campaign's definition under ``<workdir>/campaigns/`` (folders not named as a
    campaign, or without a definition, skipped)."""
    root = settings.workdir / "campaigns"
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        definition = folder / f"campaign_{folder.name}.json"
        if CAMPAIGN_NAME.fullmatch(folder.name) and definition.is_file():
            try:
                out.append(json.loads(definition.read_text()))
            except (OSError, ValueError):
                log.warning("unreadable campaign definition %s", definition)
    return out


def _pct(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def answer_rows(table: pd.DataFrame, by: str, lang: Language) -> list[dict]:
    """An answer table (per wave or per channel) as rows of words: counts as they are, rates in %."""
    rows = []
    for record in table.to_dict("records") if len(table) else []:
        key = str(record[by])
        label = lib.CHANNEL_NAMES[key][0 if lang == "zh" else 1] if key in lib.CHANNEL_NAMES else key
        cells = [
            _pct(record.get(c)) if c.endswith("_rate") else f"{int(record.get(c, 0) or 0):,}"
            for c in TABLE_COLUMNS
        ]
        rows.append({"key": key, "label": label, "cells": cells})
    return rows


def uplift_figure(by_best_channel: pd.DataFrame, lang: Language) -> str | None:
    """The uplift per best channel with its 95% interval as error bars (percentage points), JSON; None
    when no segment has both groups."""
    records = by_best_channel.to_dict("records") if len(by_best_channel) else []
    rows = [r for r in records if all(pd.notna(r.get(k)) for k in ("uplift", "low", "high"))]
    if not rows:
        return None
    k = 0 if lang == "zh" else 1
    figure = go.Figure(
        go.Bar(
            x=[lib.CHANNEL_NAMES.get(r["best_channel"], (r["best_channel"],) * 2)[k] for r in rows],
            y=[100 * r["uplift"] for r in rows],
            error_y={
                "type": "data",
                "array": [100 * (r["high"] - r["uplift"]) for r in rows],
                "arrayminus": [100 * (r["uplift"] - r["low"]) for r in rows],
            },
            marker_color="#1f5f99",
        )
    )
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 10, "t": 20, "b": 60},
        yaxis_title="uplift, percentage points" if k else "提升（百分点）",
    )
    return figure_json(figure)


def report_view(report: dict, lang: Language) -> dict:
    """Everything the report page shows, from ``serving.campaign_response.measure``'s report."""
    o = report["overall"]
    return {
        "as_of": report["as_of"],
        "events": report["events"],
        "contacted": o["contacted"],
        "control": o["control"],
        "rate_contacted": _pct(o["rate_contacted"]),
        "rate_control": _pct(o["rate_control"]),
        "uplift": _pct(o["uplift"]),
        "low": _pct(o["low"]),
        "high": _pct(o["high"]),
        "best_frequency": report["best_contact_frequency"],
        "by_wave": answer_rows(report["by_wave"], "wave", lang),
        "by_channel": answer_rows(report["by_channel"], "channel", lang),
        "figure": uplift_figure(report["by_best_channel"], lang),
    }


def handle(visit: Visit) -> dict:
    """The list; with ``?name=``, that campaign's report below it (404 for a campaign the key may
    not see, as for one that does not exist)."""
    settings = visit.backend.settings
    listed = campaign_list(exported_definitions(settings), visit.scope)
    context: dict = {
        "w": CAMPAIGN_WORDS.in_language(visit.lang),
        "columns": TABLE_COLUMNS,
        "campaigns": listed,
        "chosen": None,
        "report": None,
    }
    name = (visit.query or {}).get("name", "")[:41]
    if not name:
        return context
    chosen = next((d for d in listed if d["name"] == name), None)
    if chosen is None:
        log.info("console campaign report %s from key %s: unknown", name[:41], visit.key_name)
        return {**context, "error": "unknown_campaign", "status": 404}
    try:
        result = report_campaign(settings, name, log_to_mlflow=False)
    except TelcomlError as err:
        return {**context, "chosen": chosen, "error_text": str(err), "status": 409}
    log.info("console campaign report %s from key %s", name, visit.key_name)
    return {**context, "chosen": chosen, "report": report_view(result.report, visit.lang)}


PAGE = Page("/campaigns", "营销活动报告", "Campaign reports", "campaign_reports.html", handle)

__all__ = ["PAGE", "answer_rows", "campaign_list", "report_view", "uplift_figure"]
