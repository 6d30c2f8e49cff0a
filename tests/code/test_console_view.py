"""The console's customer view and outcome form as pure functions: hand-built answers and indicators."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.guidance import TOPICS
from core.retention_config import RetentionConfig, ThresholdRule
from core.settings import Settings
from features.feedback import FeedbackError, parse_event
from serving.console.customer import CONTACT_CAP, customer_view, outcome_event, warnings
from serving.console.session import Sessions, csrf_ok


def _answer(tariff="low", complaint="low", grade=4) -> dict:
    reason = {
        "text_en": "Arrears record 0 months raises the credit grade",
        "text_zh": "欠费记录0个月，提升信用等级",
    }
    return {
        "msisdn": "13812342343",
        "province": "GD",
        "credit_grade": {"code": grade, "label_en": "good", "label_zh": "信用较好", "reasons": [reason]},
        "tariff_sensitivity": {
            "score": 80.0 if tariff == "high" else 20.0,
            "level": tariff,
            "level_zh": "高",
            "population_average": 30.8,
            "reasons": [],
        },
        "complaint_sensitivity": {
            "score": 75.0 if complaint == "high" else 9.0,
            "level": complaint,
            "level_zh": "低",
            "population_average": 23.5,
            "reasons": [],
        },
        "churn": {"probability": 0.0123, "band": "low", "band_zh": "低", "reasons": []},
        "channel_preference": {
            "ranking": ["online_hall", "hotline_10086"],
            "best_channel": "online_hall",
            "reasons": [],
        },
        "guidance": [
            {"topic": "complaint_handling", "text_en": "Light check.", "text_zh": "简单核实。"},
            {
                "topic": "gift_ceiling",
                "value": 10,
                "text_en": "Gift up to 10 yuan.",
                "text_zh": "可赠送不超过10元。",
            },
        ],
        "models": {"credit_grade": "models:/telcoml-credit_grade/1"},
        "features_as_of": "2026-06-30T23:59:59+00:00",
        "answered_from": "live",
    }


QUIET = {"black_list_flag": 0, "complaint_count_3m": 0, "contacts_online_hall_3m": 2, "province": "GD"}


def _codes(found: list[dict]) -> list[str]:
    return [w["code"] for w in found]


def test_a_quiet_customer_has_no_warning():
    assert warnings(_answer(), QUIET) == []


def test_each_rule_of_the_agents_raises_its_warning_black_list_first():
    indicators = {
        **QUIET,
        "black_list_flag": 1,
        "complaint_count_3m": 2,
        "contacts_hotline_10086_3m": CONTACT_CAP,
    }
    found = warnings(_answer(tariff="high", complaint="high"), indicators, lang="en")
    assert _codes(found) == [
        "black_list",
        "complaint_sensitive",
        "tariff_sensitive",
        "complaints_over_threshold",
        "contact_cap",
    ]
    assert found[2]["text"].startswith("Tariff-sensitive: recommend no plans")
    assert "Complaint record ≥ 2 (2)" in found[3]["detail"]


def test_the_complaint_line_is_the_provinces_own():
    strict = RetentionConfig(
        warning_rules={"complaints": ThresholdRule(indicator="complaint_count_3m", at_least=3)}
    )

    class Province:
        retention = strict

    indicators = {**QUIET, "complaint_count_3m": 2}
    assert "complaints_over_threshold" in _codes(warnings(_answer(), indicators))  # the group's line: 2
    assert "complaints_over_threshold" not in _codes(warnings(_answer(), indicators, Province()))
    assert "complaints_over_threshold" in _codes(
        warnings(_answer(), {**indicators, "complaint_count_3m": 3}, Province())
    )


def test_one_contact_under_the_cap_is_not_warned():
    assert warnings(_answer(), {**QUIET, "contacts_online_hall_3m": CONTACT_CAP - 1}) == []


def test_the_view_in_both_languages():
    indicators = {
        **QUIET,
        "days_since_last_complaint": 10.0,
        "complaint_count_12m": 5,
        "billing_complaint_count_12m": 2,
    }
    zh = customer_view(_answer(), indicators, lang="zh")
    en = customer_view(_answer(), indicators, lang="en")
    assert zh["grade"] == {"code": 4, "label": "信用较好"} and en["grade"]["label"] == "good"
    assert [e["task"] for e in en["evaluations"]] == [
        "credit_grade",
        "tariff_sensitivity",
        "complaint_sensitivity",
        "churn",
        "channel_preference",
    ]
    assert en["evaluations"][3]["headline"] == "1.2% (low)"
    assert zh["evaluations"][4]["headline"] == "网上营业厅/APP > 10086热线"
    assert en["guidance"][1] == {
        "topic": "gift_ceiling",
        "label": TOPICS["gift_ceiling"].name_en,
        "text": "Gift up to 10 yuan.",
    }
    complaints = next(g for g in en["indicator_groups"] if g["subject"] == "complaints_service")
    rows = {r["id"]: r["value"] for r in complaints["rows"]}
    assert rows["latest_complaint"] == "2026-06-20"  # as of 06-30, ten days before
    assert rows["other_complaint_count_12m"] == "3 complaints"
    assert [g["subject"] for g in en["indicator_groups"]] == [
        "profile",
        "billing_payment",
        "complaints_service",
        "usage",
        "channel_contacts",
    ]
    assert en["models"] == [{"task": "credit_grade", "uri": "models:/telcoml-credit_grade/1"}]


def test_the_outcome_form_becomes_a_valid_feedback_event():
    now = datetime(2026, 7, 2, 9, 30, tzinfo=UTC)
    form = {
        "work_order_id": "WO-1",
        "verified": "unfounded",
        "refunded_amount": "0",
        "gift_amount": "5",
        "handling_hours": "3.5",
        "satisfaction": "",
    }
    event = parse_event(outcome_event(form, "13812342343", "GD", now, "console-1"), "the form", "GD")
    assert (event.type, event.verified, event.gift_amount, event.satisfaction) == (
        "complaint_outcome",
        "unfounded",
        5.0,
        None,
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("gift_amount", "501"),
        ("handling_hours", "abc"),
        ("handling_hours", "nan"),
        ("verified", "maybe"),
        ("work_order_id", "<script>"),
        ("satisfaction", "9"),
    ],
)
def test_a_bad_outcome_field_is_refused_by_name(field, value):
    form = {"work_order_id": "WO-1", "verified": "founded", "handling_hours": "2", field: value}
    with pytest.raises(FeedbackError) as err:
        parse_event(
            outcome_event(form, "13812342343", "GD", datetime.now(UTC), "console-2"), "the form", "GD"
        )
    assert err.value.field == field


def test_sessions_are_signed_and_the_secret_is_owner_only(tmp_path):
    sessions = Sessions(Settings(workdir=tmp_path))
    cookie = sessions.cookie({"key": "crm-gd", "fp": "abc", "csrf": "t0ken"}, "/console")
    value = cookie.split(";")[0].split("=", 1)[1]
    assert sessions.read(value)["key"] == "crm-gd"
    assert sessions.read(value[:-2] + "xx") == {}  # tampered
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert (tmp_path / "serving" / "console_secret").stat().st_mode & 0o077 == 0
    assert Sessions(Settings(workdir=tmp_path)).read(value)["key"] == "crm-gd"  # the same secret again
    assert csrf_ok({"csrf": "t0ken"}, {"csrf": "t0ken"}) and not csrf_ok({"csrf": "t0ken"}, {"csrf": "数"})
