"""The campaign manager's planning page (营销活动): conditions chosen in a form, the count, the
exclusions by reason and the profile of the selection on submit, then the export for the outbound
system and its download.

The form's fields are named by the campaign definition's keys (``offer.en``,
``targets.credit_grade.at_least``, a checkbox per listed value: ``targets.brands.gotone``), so
``campaign_values`` nests them into the definition ``serving.campaign_config.Campaign`` validates,
and ``field_errors`` puts each of its errors (which name the key) next to its field. A province key
plans its own province's campaigns only: the province is the key's, whatever the form says.
``serving.campaign_run.run_campaign`` does the work.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import get_args

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots
from pydantic import ValidationError

from core import indicators as lib
from core.errors import TelcomlError
from core.logs import get_logger
from core.tasks import CHURN_BANDS, CREDIT_GRADES, SENSITIVITY_LEVELS
from serving.campaign_config import CAMPAIGN_NAME, PURPOSES, Band, Brand, Campaign, Category, Channel, Level
from serving.campaign_run import campaign_dir, run_campaign
from serving.campaigns import PROFILE, SUPPRESSION_REASONS
from serving.console.campaign_words import CAMPAIGN_WORDS
from serving.console.pages import Page, Visit
from serving.console.words import Language
from serving.security import ALL_PROVINCES, may_score

log = get_logger("telcoml.console")

#: The form's single-value fields (the definition's keys) and the longest value each may have.
SCALAR_FIELDS = {
    "name": 40,
    "purpose": 30,
    "province": 2,
    "start": 10,
    "offer.en": 500,
    "offer.zh": 500,
    "offer.gift_yuan": 12,
    "waves.max_waves": 3,
    "waves.days_between": 3,
    "contact_cap": 5,
    "control_share": 12,
    "targets.credit_grade.at_least": 1,
    "targets.credit_grade.at_most": 1,
}
#: The listed conditions, each value a checkbox: the definition's own choices.
CHOICES: dict[str, tuple[str, ...]] = {
    "brands": get_args(Brand),
    "customer_categories": get_args(Category),
    "churn_bands": get_args(Band),
    "tariff_sensitivity_levels": get_args(Level),
    "complaint_sensitivity_levels": get_args(Level),
    "best_channels": get_args(Channel),
}
#: Conditions on numeric indicators the form offers at once (the definition allows more).
INDICATOR_ROWS = 2
MAX_CITIES_CHARS = 400
NUMERIC_INDICATORS = tuple(
    i.id for i in lib.BY_ID.values() if i.kind != "category" and i.codes is None and i.valid_range is not None
)
#: Where an error of the definition shows: the longest of these its key starts with (else on top).
FIELD_KEYS = (
    *SCALAR_FIELDS,
    *(f"targets.{t}" for t in CHOICES),
    "targets.cities",
    "targets.credit_grade",
    "targets.indicators",
)


def _labels(lang: Language) -> dict[str, dict[str, str]]:
    zh = lang == "zh"
    bands = {b[1]: b[2] if zh else b[1] for b in CHURN_BANDS}
    levels = {level[1]: level[2] if zh else level[1] for level in SENSITIVITY_LEVELS}
    return {
        "brands": {c: c for c in CHOICES["brands"]},
        "customer_categories": {c: c for c in CHOICES["customer_categories"]},
        "churn_bands": bands,
        "tariff_sensitivity_levels": levels,
        "complaint_sensitivity_levels": levels,
        "best_channels": {c: lib.CHANNEL_NAMES[c][0 if zh else 1] for c in CHOICES["best_channels"]},
    }


def form_choices(lang: Language) -> dict:
    """What the form offers: purposes, conditions' values with their labels, grades, indicators."""
    zh = lang == "zh"
    labels = _labels(lang)
    return {
        "purposes": PURPOSES,
        "provinces": lib.PROVINCES,
        "lists": [{"target": t, "options": list(labels[t].items())} for t in CHOICES],
        "grades": [(g[0], f"{g[0]} {g[1] if zh else g[2]}") for g in CREDIT_GRADES],
        "indicators": [(i, lib.BY_ID[i].name_zh if zh else lib.BY_ID[i].name_en) for i in NUMERIC_INDICATORS],
        "indicator_rows": list(range(1, INDICATOR_ROWS + 1)),
    }


def _put(values: dict, path: list[str], value) -> None:
    for part in path[:-1]:
        values = values.setdefault(part, {})
    values[path[-1]] = value


def campaign_values(form: dict[str, str], scope: str) -> dict:
    """The form as the campaign definition's keys (values still text: the definition's validation
    parses and bounds them, so its errors name the key); empty fields keep the definition's default,
    a province key's campaign is of its province."""
    values: dict = {}
    for name, longest in SCALAR_FIELDS.items():
        value = form.get(name, "").strip()[: longest + 1]
        if value:
            _put(values, name.split("."), value)
    if scope != ALL_PROVINCES:
        values["province"] = scope
    for target, choices in CHOICES.items():
        chosen = [c for c in choices if form.get(f"targets.{target}.{c}")]
        if chosen:
            _put(values, ["targets", target], chosen)
    text = form.get("targets.cities", "")[: MAX_CITIES_CHARS + 1]
    cities = [c.strip() for c in text.replace("，", ",").split(",") if c.strip()]
    if cities:
        _put(values, ["targets", "cities"], cities)
    for row in range(1, INDICATOR_ROWS + 1):
        indicator = form.get(f"indicator.{row}", "").strip()[:64]
        if not indicator:
            continue
        between = {
            bound: form.get(f"indicator.{row}.{bound}", "").strip()[:20] for bound in ("at_least", "at_most")
        }
        _put(values, ["targets", "indicators", indicator], {k: v for k, v in between.items() if v})
    return values


def field_errors(err: ValidationError) -> dict[str, str]:
    """The definition's errors by the form's field they belong to (``form`` for the rest), each
    naming its key."""
    out: dict[str, str] = {}
    for e in err.errors(include_url=False, include_input=False):
        key = ".".join(str(p) for p in e["loc"])
        within = [f for f in FIELD_KEYS if key == f or key.startswith(f + ".")]
        # a missing section (``offer``) shows by its first field
        field = (
            max(within, key=len)
            if within
            else next((f for f in FIELD_KEYS if f.startswith(key + ".")), "form")
        )
        message = f"{key or 'campaign'}: {e['msg'].removeprefix('Value error, ')}"
        out[field] = f"{out[field]}; {message}" if field in out else message
    return out


def parse_campaign(form: dict[str, str], scope: str) -> tuple[Campaign | None, dict[str, str]]:
    """The campaign the form defines, or None and the errors by field."""
    try:
        return Campaign.model_validate(campaign_values(form, scope), strict=False), {}
    except ValidationError as err:
        return None, field_errors(err)


def exclusions(preview: dict, lang: Language) -> list[dict]:
    """The suppressed customers per reason, the reason in both languages (the page's first)."""
    rows = []
    for code, (en, zh) in SUPPRESSION_REASONS.items():
        first, second = (zh, en) if lang == "zh" else (en, zh)
        rows.append(
            {"code": code, "count": preview["suppressed"].get(code, 0), "text": first, "other": second}
        )
    return rows


def profile_figure(profile: dict, lang: Language) -> str:
    """The selection's and the to-contact list's profile (brand, category, credit grade, churn band,
    best channel) as one plotly figure of bar charts, JSON."""
    columns = [c for c in PROFILE if c in profile]
    names = {
        "brand": ("品牌", "Brand"),
        "customer_category": ("客户类别", "Category"),
        "credit_grade": ("信用等级", "Credit grade"),
        "churn_band": ("离网风险", "Churn band"),
        "best_channel": ("最佳渠道", "Best channel"),
    }
    k = 0 if lang == "zh" else 1
    figure = make_subplots(
        rows=1,
        cols=max(len(columns), 1),
        subplot_titles=[names[c][k] for c in columns],
        horizontal_spacing=0.04,
    )
    legend = (("selected", ("入选", "selected")), ("to_contact", ("待接触", "to contact")))
    for i, column in enumerate(columns, start=1):
        values = list(profile[column])
        for j, (part, label) in enumerate(legend):
            figure.add_trace(
                go.Bar(
                    x=values,
                    y=[profile[column][v][part] for v in values],
                    name=label[k],
                    legendgroup=part,
                    showlegend=i == 1,
                    marker_color=("#9bb7d4", "#1f5f99")[j],
                ),
                row=1,
                col=i,
            )
    figure.update_layout(barmode="group", height=320, margin={"l": 40, "r": 10, "t": 40, "b": 60})
    return figure_json(figure)


def figure_json(figure: go.Figure) -> str:
    """A figure as JSON safe inside a ``<script type="application/json">`` block."""
    return pio.to_json(figure).replace("</", "<\\/")


def preview_view(preview: dict, lang: Language) -> dict:
    """Everything the preview shows: the counts, exclusions by reason and the profile chart."""
    return {
        "counts": {k: preview[k] for k in ("customers", "selected", "control", "to_contact")},
        "suppressed": sum(preview["suppressed"].values()),
        "month": preview["month"],
        "exclusions": exclusions(preview, lang),
        "profile_figure": profile_figure(preview["profile"], lang),
    }


def exported_province(settings, name: str) -> str | None:
    """The province of exported campaign ``name``, or None if there is none (or the name is not one)."""
    if not CAMPAIGN_NAME.fullmatch(name):
        return None
    definition = campaign_dir(settings, name) / f"campaign_{name}.json"
    if not definition.exists():
        return None
    return json.loads(definition.read_text()).get("province")


def export_file(backend, scope: str, name: str) -> Path | None:
    """The outbound CSV of exported campaign ``name`` if the key may have it, else None (another
    province's campaign and no campaign look the same)."""
    province = exported_province(backend.settings, name)
    if province is None or not may_score(scope, province):
        return None
    path = campaign_dir(backend.settings, name) / f"campaign_{name}.csv"
    return path if path.exists() else None


def _defaults(scope: str) -> dict[str, str]:
    today = dt.date.today()
    start = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return {
        "purpose": "retention",
        "province": "" if scope == ALL_PROVINCES else scope,
        "start": start.isoformat(),
        "waves.max_waves": "3",
        "waves.days_between": "7",
        "contact_cap": "12",
        "control_share": "0.1",
    }


def handle(visit: Visit) -> dict:
    """GET: the form. POST: the campaign previewed (``action=preview``) or exported too
    (``action=export``), the form shown again with its values."""
    context: dict = {
        "w": CAMPAIGN_WORDS.in_language(visit.lang),
        "scope_code": visit.scope,
        "choices": form_choices(visit.lang),
        "errors": {},
        "view": None,
        "exported": None,
    }
    form = visit.form
    if form is None:
        return {**context, "values": _defaults(visit.scope)}
    context["values"] = {k: v[:600] for k, v in form.items() if k != "csrf"}
    if visit.scope != ALL_PROVINCES:
        context["values"]["province"] = visit.scope
    campaign, errors = parse_campaign(form, visit.scope)
    if campaign is None:
        return {**context, "errors": errors, "status": 422}
    export = form.get("action") == "export"
    settings = visit.backend.settings
    if export:
        owner = exported_province(settings, campaign.name)
        if owner is not None and owner != campaign.province:
            taken = f"name: campaign {campaign.name} was exported for {owner}; choose another name"
            return {**context, "errors": {"name": taken}, "status": 409}
    try:
        result = run_campaign(settings, visit.backend.models, campaign, export=export)
    except TelcomlError as err:
        return {**context, "errors": {"form": str(err)}, "status": 409}
    log.info(
        "console campaign %s (%s) from key %s: %d to contact%s",
        campaign.name,
        campaign.province,
        visit.key_name,
        result.preview["to_contact"],
        ", exported" if export else "",
    )
    context["view"] = preview_view(result.preview, visit.lang)
    if export:
        context["exported"] = {"name": campaign.name, "files": sorted(p.name for p in result.files.values())}
    return context


PAGE = Page("/campaign-plan", "营销活动策划", "Plan a campaign", "campaign_plan.html", handle)

__all__ = [
    "PAGE",
    "campaign_values",
    "exclusions",
    "export_file",
    "field_errors",
    "form_choices",
    "parse_campaign",
    "preview_view",
    "profile_figure",
]
