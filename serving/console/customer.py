"""The agent's customer view, readable in seconds while the customer is on the line: the grade big,
what to take care of in red at the top, the guidance for this grade, the four evaluations with
their reasons, the indicators grouped as the documents group them, and the provenance.

Below it, the complaint's handling outcome (工单处理信息), which goes into the feedback the
platform learns from (``features.feedback``) as ``/feedback`` would store it.

``customer_view`` is pure (an answer and indicators in, plain dicts out); the page's handler does
the I/O (``serving.console.lookup``, the feedback store).
"""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy.exc

from core import indicators as lib
from core.guidance import SENSITIVE_LEVEL, TOPICS
from core.logs import get_logger
from core.msisdn import MSISDN_PATTERN
from core.retention_config import RetentionConfig
from core.tasks import TASKS
from features.feedback import FeedbackError, FeedbackStore, parse_event
from serving.campaign_config import Campaign
from serving.campaigns import contacts_so_far
from serving.console.lookup import customer_record
from serving.console.pages import Page, Visit
from serving.console.words import Language, words
from serving.online import StoreUnavailable
from training.explain import value_words

log = get_logger("telcoml.console")

#: Contacts in 90 days at which campaigns stop contacting a customer (a campaign's default cap).
CONTACT_CAP = Campaign.model_fields["contact_cap"].default
#: What each warning says, (Chinese, English): the agents' rules of the documents.
WARNINGS = {
    "black_list": (
        "黑名单客户：信用等级不高于较差，处理从严",
        "Black-listed: graded poor at best, handle strictly",
    ),
    "complaint_sensitive": ("投诉敏感：先处理投诉", "Complaint-sensitive: attend to the complaint first"),
    "tariff_sensitive": (
        "话费敏感：不推荐套餐和新业务",
        "Tariff-sensitive: recommend no plans or new services",
    ),
    "complaints_over_threshold": ("投诉超过本省预警线", "Complaints over the province's warning line"),
    "contact_cap": ("90天接触次数已达上限：不做营销", "Contact cap reached in 90 days: no marketing"),
}


def _pick(pair: tuple[str, str], lang: Language) -> str:
    return pair[0] if lang == "zh" else pair[1]


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def warnings(answer: dict, indicators: dict, config=None, lang: Language = "zh") -> list[dict]:
    """What the agent must not miss, most binding first: each ``{"code", "text", "detail"}``."""
    out = []

    def add(code: str, detail: str = "") -> None:
        out.append({"code": code, "text": _pick(WARNINGS[code], lang), "detail": detail})

    if _number(indicators.get("black_list_flag")) == 1:
        add("black_list")
    for task, code in (
        ("complaint_sensitivity", "complaint_sensitive"),
        ("tariff_sensitivity", "tariff_sensitive"),
    ):
        block = answer.get(task)
        if block and block.get("level") == SENSITIVE_LEVEL:
            add(code, f"{block.get('score')}")
    rules = (getattr(config, "retention", None) or RetentionConfig()).warning_rules
    for rule in rules.values():
        value = _number(indicators.get(rule.indicator))
        if rule.change or lib.BY_ID[rule.indicator].unit != "complaints" or value is None:
            continue
        over = value >= rule.threshold if rule.at_least is not None else value <= rule.threshold
        if over:
            en, zh = rule.words()
            add("complaints_over_threshold", f"{zh if lang == 'zh' else en} ({value:g})")
    contacts = int(contacts_so_far(pd.DataFrame([indicators]))[0])
    if contacts >= CONTACT_CAP:
        add("contact_cap", f"{contacts} ≥ {CONTACT_CAP}")
    return out


def _headline(block: dict, lang: Language) -> str:
    """An evaluation's answer in a few words, by the shape of its block (grade, score, probability,
    ranking)."""
    zh = lang == "zh"
    if "label_zh" in block:
        return f"{block['code']} {block['label_zh'] if zh else block['label_en']}"
    if "score" in block:
        level = block.get("level_zh") if zh else block.get("level")
        average = words(lang)("population_average")
        return f"{block['score']} ({level}; {average} {block.get('population_average')})"
    if "probability" in block:
        band = block.get("band_zh") if zh else block.get("band")
        return f"{100 * block['probability']:.1f}% ({band})"
    if "ranking" in block:
        names = [_pick(lib.CHANNEL_NAMES.get(c, (c, c)), lang) for c in block["ranking"]]
        return " > ".join(names)
    return ""


def evaluations(answer: dict, lang: Language) -> list[dict]:
    """Each task's answer: its name, the answer in a few words, the reasons in ``lang``."""
    out = []
    for name, task in TASKS.items():
        block = answer.get(name)
        if not block:
            continue
        out.append(
            {
                "task": name,
                "title": task.name_zh if lang == "zh" else task.name_en,
                "headline": _headline(block, lang),
                "reasons": [r["text_zh"] if lang == "zh" else r["text_en"] for r in block.get("reasons", [])],
                "retention": bool(block.get("retention")),
            }
        )
    return out


def guidance(answer: dict, lang: Language) -> list[dict]:
    """The guidance for this grade and customer: each item's topic name (where it has one) and text."""
    out = []
    for item in answer.get("guidance", []):
        topic = TOPICS.get(item.get("topic", ""))
        out.append(
            {
                "topic": item.get("topic"),
                "label": (topic.name_zh if lang == "zh" else topic.name_en) if topic else "",
                "text": item["text_zh"] if lang == "zh" else item["text_en"],
            }
        )
    return out


def _latest_complaint(indicators: dict, as_of: str | None) -> str | None:
    days = _number(indicators.get("days_since_last_complaint"))
    if days is None or not as_of:
        return None
    return (datetime.fromisoformat(as_of).date() - timedelta(days=int(days))).isoformat()


def indicator_groups(indicators: dict, as_of: str | None, lang: Language) -> list[dict]:
    """The indicators by the library's subjects (profile, billing and payment, complaints, usage and
    roaming, contacts), each value worded as the reasons word it; the complaints add the latest
    complaint's date and the complaints other than billing ones."""
    zh, t = lang == "zh", words(lang)
    groups = []
    for subject in lib.SUBJECTS:
        rows = [
            {
                "id": i.id,
                "name": i.name_zh if zh else i.name_en,
                "value": value_words(indicators.get(i.id), i.unit, lang),
            }
            for i in lib.by_subject(subject)
            if i.id in indicators
        ]
        if subject == "complaints_service":
            latest = _latest_complaint(indicators, as_of)
            rows.insert(
                0, {"id": "latest_complaint", "name": t("latest_complaint"), "value": latest or t("none")}
            )
            total, billing = (
                _number(indicators.get(k)) for k in ("complaint_count_12m", "billing_complaint_count_12m")
            )
            if total is not None and billing is not None:
                rows.insert(
                    3,
                    {
                        "id": "other_complaint_count_12m",
                        "name": t("other_complaints_12m"),
                        "value": value_words(int(total - billing), "complaints", lang),
                    },
                )
        groups.append({"subject": subject, "title": _pick(SUBJECT_NAMES[subject], lang), "rows": rows})
    return groups


#: The library's subjects as the documents name them.
SUBJECT_NAMES = {
    "profile": ("客户资料", "Profile"),
    "billing_payment": ("消费与缴费", "Billing and payment"),
    "complaints_service": ("投诉与服务", "Complaints"),
    "usage": ("使用与漫游", "Usage and roaming"),
    "channel_contacts": ("接触记录", "Contacts"),
}


def customer_view(answer: dict, indicators: dict, config=None, lang: Language = "zh") -> dict:
    """Everything the customer view shows, from the ``/score`` answer and the indicators."""
    credit = answer.get("credit_grade") or {}
    return {
        "msisdn": answer["msisdn"],
        "province": answer.get("province"),
        "grade": {
            "code": credit.get("code"),
            "label": credit.get("label_zh") if lang == "zh" else credit.get("label_en"),
        }
        if credit
        else None,
        "warnings": warnings(answer, indicators, config, lang),
        "guidance": guidance(answer, lang),
        "evaluations": evaluations(answer, lang),
        "indicator_groups": indicator_groups(indicators, answer.get("features_as_of"), lang),
        "features_as_of": answer.get("features_as_of"),
        "models": [{"task": t, "uri": uri} for t, uri in (answer.get("models") or {}).items()],
        "answered_from": answer.get("answered_from"),
    }


# -- the handling outcome ---------------------------------------------------------------------
#: The outcome form's fields and the longest value each may have.
OUTCOME_FIELDS = {
    "work_order_id": 64,
    "verified": 10,
    "refunded_amount": 12,
    "gift_amount": 12,
    "handling_hours": 12,
    "satisfaction": 1,
}


def outcome_event(form: dict[str, str], msisdn: str, province: str, now: datetime, event_id: str) -> dict:
    """The form's fields as a ``complaint_outcome`` event, for ``features.feedback.parse_event`` to
    validate (numbers stay text where they are not numbers, so its message names the field)."""
    event: dict = {
        "type": "complaint_outcome",
        "event_id": event_id,
        "time": now.isoformat(timespec="seconds"),
        "province": province,
        "msisdn": msisdn,
    }
    for name, longest in OUTCOME_FIELDS.items():
        value = form.get(name, "").strip()[: longest + 1]
        if not value:
            continue
        if name in ("work_order_id", "verified"):
            event[name] = value
        else:
            try:
                event[name] = int(value) if name == "satisfaction" else float(value)
            except ValueError:
                event[name] = value  # refused by parse_event with the field's name
            else:
                if isinstance(event[name], float) and not math.isfinite(event[name]):
                    event[name] = value
    event.setdefault("refunded_amount", 0.0)
    event.setdefault("gift_amount", 0.0)
    return event


def _store_outcome(visit: Visit, msisdn: str, province: str) -> dict:
    """Validate and store the outcome; the page's message (and the status for a refusal)."""
    item = outcome_event(
        visit.form or {}, msisdn, province, datetime.now(UTC), f"console-{secrets.token_hex(8)}"
    )
    try:
        event = parse_event(item, "the form", visit.scope)
    except FeedbackError as err:
        return {"outcome_error": f"{err.field}: {str(err).split(': ', 1)[-1]}", "status": 422}
    try:
        status = FeedbackStore(visit.backend.settings.feedback_store).add([event])[0]
    except sqlalchemy.exc.SQLAlchemyError as err:
        log.warning("feedback store unavailable: %s", type(err).__name__)
        return {"outcome_error": "store_unavailable", "status": 503}
    log.info("console outcome %s for %s from key %s: %s", event.event_id, msisdn, visit.key_name, status)
    return {"outcome_status": status, "outcome_event_id": event.event_id}


def handle(visit: Visit) -> dict:
    """GET: the search form. POST: look the number up (``action=search``) or record the outcome
    for it (``action=outcome``), then show the customer."""
    form = visit.form
    if form is None:
        return {"view": None}
    msisdn = form.get("msisdn", "").strip()[:20]
    if not MSISDN_PATTERN.match(msisdn):
        return {"view": None, "error": "invalid_msisdn", "status": 422}
    try:
        record = customer_record(visit.backend, visit.scope, msisdn)
    except StoreUnavailable:
        return {"view": None, "msisdn": msisdn, "error": "store_unavailable", "status": 503}
    if record is None:
        log.info("console lookup %s from key %s: unknown", msisdn, visit.key_name)
        return {"view": None, "msisdn": msisdn, "error": "unknown_customer", "status": 404}
    context: dict = {}
    if form.get("action") == "outcome":
        context = _store_outcome(visit, msisdn, record.answer["province"])
    view = customer_view(record.answer, record.indicators, record.config, visit.lang)
    log.info("console lookup %s from key %s: %s", msisdn, visit.key_name, view["answered_from"])
    return {**context, "view": view, "msisdn": msisdn}


PAGE = Page("/customer", "客户视图", "Customer view", "customer.html", handle)

__all__ = [
    "PAGE",
    "customer_view",
    "evaluations",
    "guidance",
    "indicator_groups",
    "outcome_event",
    "warnings",
]
