"""The campaign pages' pure parts on hand-made inputs: the form into a campaign definition (scoped to
the key's province, errors by field), the exclusions in both languages, the charts, the list's scope."""

import json

import pandas as pd

from serving.console.campaign_reports import answer_rows, campaign_list, report_view, uplift_figure
from serving.console.campaigns import campaign_values, exclusions, parse_campaign, profile_figure

FORM = {
    "name": "spring-care",
    "purpose": "care",
    "province": "HE",
    "start": "2026-12-01",
    "offer.en": "A free data pack",
    "offer.zh": "赠送流量包",
    "targets.brands.gotone": "1",
    "targets.brands.mzone": "1",
    "targets.brands.bogus": "1",
    "targets.credit_grade.at_least": "3",
    "targets.cities": "广州，深圳, ",
    "indicator.1": "roaming_minutes_3m",
    "indicator.1.at_least": "60",
    "control_share": "0.2",
}


def test_a_province_key_plans_its_own_province_whatever_the_form_says():
    campaign, errors = parse_campaign(FORM, "GD")
    assert errors == {}
    assert campaign.province == "GD"
    assert campaign.targets.brands == ["gotone", "mzone"]  # an unknown ticked value is no choice
    assert campaign.targets.cities == ["广州", "深圳"]
    assert campaign.targets.credit_grade.at_least == 3 and campaign.targets.credit_grade.at_most == 5
    assert campaign.targets.indicators["roaming_minutes_3m"].at_least == 60
    assert campaign.control_share == 0.2
    assert parse_campaign(FORM, "*")[0].province == "HE"  # a group key chooses


def test_errors_name_their_key_and_sit_by_their_field():
    form = {
        **FORM,
        "control_share": "0.9",
        "targets.credit_grade.at_most": "2",
        "indicator.1.at_least": "lots",
        "name": "../etc",
    }
    campaign, errors = parse_campaign(form, "GD")
    assert campaign is None
    assert errors["control_share"].startswith("control_share:")
    assert "at_least (3) is above at_most (2)" in errors["targets.credit_grade"]
    assert errors["targets.indicators"].startswith("targets.indicators.roaming_minutes_3m.at_least")
    assert "campaign name" in errors["name"]


def test_empty_fields_keep_the_definitions_defaults():
    values = campaign_values({"name": "x", "offer.en": "", "waves.max_waves": "  "}, "GD")
    assert values == {"name": "x", "province": "GD"}
    errors = parse_campaign({"name": "x"}, "GD")[1]
    assert errors["offer.en"].startswith("offer:") and "start" in errors and "form" not in errors


def test_exclusions_in_both_languages_first_the_pages():
    preview = {"suppressed": {"contact_cap": 4, "black_list": 1}}
    zh = {r["code"]: r for r in exclusions(preview, "zh")}
    en = {r["code"]: r for r in exclusions(preview, "en")}
    assert zh["contact_cap"]["count"] == 4 and zh["do_not_disturb"]["count"] == 0
    assert zh["black_list"]["text"] == "黑名单客户" == en["black_list"]["other"]


def test_profile_chart_has_both_groups_per_value():
    profile = {
        "brand": {"gotone": {"selected": 3, "to_contact": 2}, "mzone": {"selected": 1, "to_contact": 0}}
    }
    figure = json.loads(profile_figure(profile, "en"))
    assert [t["name"] for t in figure["data"]] == ["selected", "to contact"]
    assert figure["data"][1]["y"] == [2, 0]


def test_uplift_chart_error_bars_are_the_interval():
    table = pd.DataFrame(
        [
            {"best_channel": "outbound", "uplift": 0.05, "low": 0.01, "high": 0.12},
            {"best_channel": "sms_hall", "uplift": None, "low": None, "high": None},
        ]
    )
    bar = json.loads(uplift_figure(table, "en"))["data"][0]
    assert bar["x"] == ["outbound call"]
    assert abs(bar["error_y"]["array"][0] - 7) < 1e-9 and abs(bar["error_y"]["arrayminus"][0] - 4) < 1e-9
    assert uplift_figure(pd.DataFrame(), "en") is None


def test_report_view_words_rates_and_tables():
    by_wave = pd.DataFrame(
        {"wave": [1, 2], "attempts": [10, 4], "reached": [5, 2], "accepted": [2, 0], "undecided": [1, 1]}
        | {"reach_rate": [0.5, 0.5], "acceptance_rate": [0.2, 0.0], "objection_rate": [0.1, 0.25]}
    )
    report = {
        "as_of": "2026-11-30",
        "events": 14,
        "overall": {"contacted": 90, "control": 10, "rate_contacted": 0.2, "rate_control": 0.1}
        | {"uplift": 0.1, "low": -0.02, "high": 0.21},
        "best_contact_frequency": None,
        "by_wave": by_wave,
        "by_channel": pd.DataFrame(),
        "by_best_channel": pd.DataFrame(),
    }
    view = report_view(report, "en")
    assert (view["uplift"], view["low"], view["high"]) == ("10.0%", "-2.0%", "21.0%")
    assert view["by_wave"][1]["cells"] == ["4", "2", "0", "1", "50.0%", "0.0%", "25.0%"]
    assert view["by_channel"] == [] and view["figure"] is None
    assert (
        answer_rows(pd.DataFrame({"channel": ["outbound"], "attempts": [3]}), "channel", "zh")[0]["label"]
        == "外呼"
    )


def test_a_province_key_lists_its_province_only():
    definitions = [
        {"name": "a", "province": "GD", "start": "2026-01-01"},
        {"name": "b", "province": "HE", "start": "2026-02-01"},
        {"name": "c", "province": "GD", "start": "2026-03-01"},
    ]
    assert [d["name"] for d in campaign_list(definitions, "GD")] == ["c", "a"]
    assert [d["name"] for d in campaign_list(definitions, "*")] == ["c", "b", "a"]
