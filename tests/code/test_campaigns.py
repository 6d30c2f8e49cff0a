"""Campaigns out, the pure part: the definition refused when wrong, each suppression rule, the control
group, the wave plan and the Chinese waves text."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core import indicators as lib
from core.errors import ConfigurationError
from core.tasks import guidance
from features.yamlfile import MAX_FILE_BYTES
from serving.campaign_config import Campaign, campaign_of, read_campaign
from serving.campaigns import (
    SUPPRESSION_REASONS,
    active_do_not_disturb,
    control_group,
    plan,
    preview,
    suppression,
    targeted,
    wave_plan,
)

START = dt.date(2026, 7, 1)
RANKING = "online_hall,hotline_10086,sms_hall,business_hall,outbound"


def campaign(**changes) -> Campaign:
    values = {
        "name": "roaming-spring",
        "purpose": "cross_sell",
        "province": "GD",
        "start": START,
        "offer": {"en": "Roaming plan, 30 yuan.", "zh": "漫游套餐30元。"},
        "contact_cap": 5,
        "control_share": 0.0,
    }
    return Campaign.model_validate({**values, **changes})


def customers(n: int, **columns) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` clean customers (nothing suppresses them), with ``columns`` replacing values."""
    frame = pd.DataFrame(
        {
            "msisdn": [f"138{k:08d}" for k in range(n)],
            "brand": ["gotone"] * n,
            "customer_category": ["individual"] * n,
            "black_list_flag": [0] * n,
            "days_since_last_complaint": [np.nan] * n,
            "roaming_minutes_3m": [10.0] * n,
            **{c: [0] * n for c in (f"contacts_{ch}_3m" for ch in lib.CHANNELS)},
        }
    )
    decided = pd.DataFrame(
        {
            "credit_grade": np.full(n, 4, dtype=np.int8),
            "tariff_sensitivity_level": ["low"] * n,
            "complaint_sensitivity_level": ["low"] * n,
            "churn_band": ["low"] * n,
            "best_channel": ["online_hall"] * n,
            "channel_ranking": [RANKING] * n,
        }
    )
    for column, values in columns.items():
        (decided if column in decided else frame)[column] = values
    return frame, decided


# --- the definition ---------------------------------------------------------------------------------


def write(tmp_path, text: str):
    path = tmp_path / "campaign.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """name: roaming-spring
purpose: cross_sell
province: GD
start: 2026-07-01
offer: {en: "Roaming plan, 30 yuan.", zh: "漫游套餐30元。"}
targets:
  brands: [gotone]
  credit_grade: {at_least: 3}
  indicators: {roaming_minutes_3m: {at_least: 1}}
waves: {max_waves: 3, days_between: 7}
"""


def test_a_good_file_is_read_with_its_defaults(tmp_path):
    c = read_campaign(write(tmp_path, GOOD))
    assert c.targets.credit_grade.at_least == 3 and c.control_share == 0.1 and c.waves.max_waves == 3


@pytest.mark.parametrize(
    "line, key",
    [
        ("contact_cap: 1000000000000", "contact_cap"),  # unbounded
        ("control_share: 0.9", "control_share"),
        ("control_share: .nan", "control_share"),
        ("waves: {max_waves: 6}", "waves.max_waves"),
        ("purpose: spam", "purpose"),
        ("name: ../etc", "name"),
        ("targets: {indicators: {roaming_minute_3m: {at_least: 1}}}", "roaming_minute_3m"),
        ("targets: {indicators: {tenure_months: {at_least: 100000}}}", "tenure_months"),
        ("targets: {credit_grade: {at_least: 7}}", "targets.credit_grade.at_least"),
        ("targets: {brands: [gotone, nokia]}", "targets.brands.1"),
        ("colour: red", "colour"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(tmp_path, line, key):
    with pytest.raises(ConfigurationError) as err:
        read_campaign(write(tmp_path, GOOD + line + "\n"))
    assert "campaign.yaml:" in str(err.value) and key in str(err.value)


def test_an_oversized_file_and_a_long_offer_are_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="at most"):
        read_campaign(write(tmp_path, GOOD + "#" * MAX_FILE_BYTES + "\n"))
    with pytest.raises(ConfigurationError, match=r"campaign.yaml:\d+: offer.en"):
        read_campaign(write(tmp_path, GOOD), {"offer": {"en": "x" * 201}})


def test_options_without_a_file_name_the_option():
    with pytest.raises(ConfigurationError, match="--control-share"):
        campaign_of({"name": "a", "purpose": "care", "province": "GD", "start": START, "control_share": 2.0})


# --- selection and suppression ----------------------------------------------------------------------


def test_targets_filter_on_decisions_and_indicator_ranges():
    frame, decided = customers(3, brand=["gotone", "mzone", "gotone"], roaming_minutes_3m=[0.0, 5.0, 5.0])
    c = campaign(targets={"brands": ["gotone"], "indicators": {"roaming_minutes_3m": {"at_least": 1}}})
    assert targeted(c, frame, decided).tolist() == [False, False, True]


@pytest.mark.parametrize(
    "reason, changes, purpose, gift",
    [
        ("contact_cap", {"contacts_outbound_3m": [3, 3], "contacts_sms_hall_3m": [2, 1]}, "cross_sell", 0),
        ("do_not_disturb", {}, "cross_sell", 0),
        ("black_list", {"black_list_flag": [1, 0]}, "cross_sell", 0),
        ("open_complaint", {"days_since_last_complaint": [12.0, 45.0]}, "cross_sell", 0),
        ("tariff_sensitive", {"tariff_sensitivity_level": ["high", "medium"]}, "tariff_communication", 0),
        ("credit_poor", {"credit_grade": np.array([2, 3], dtype=np.int8)}, "care", 20),
    ],
)
def test_each_suppression_rule_keeps_its_customer_out_with_the_reason(reason, changes, purpose, gift):
    frame, decided = customers(2, **changes)
    c = campaign(purpose=purpose, offer={"en": "A gift.", "zh": "赠送。", "gift_yuan": gift})
    dnd = {frame["msisdn"][0]} if reason == "do_not_disturb" else set()
    assert suppression(c, frame, decided, dnd).tolist() == [reason, None]


def test_rules_that_do_not_apply_to_the_purpose_suppress_nobody():
    frame, decided = customers(1, tariff_sensitivity_level=["high"], credit_grade=np.array([1], np.int8))
    assert suppression(campaign(purpose="retention"), frame, decided, set()).tolist() == [None]
    assert suppression(campaign(purpose="care"), frame, decided, set()).tolist() == [None]  # no gift


def test_a_customer_is_suppressed_once_with_the_first_reason():
    frame, decided = customers(1, black_list_flag=[1], contacts_outbound_3m=[9])
    p = plan(campaign(), "2026-06", frame, decided, {frame["msisdn"][0]})
    assert p.selected["reason"].tolist() == ["contact_cap"] and len(p.selected) == 1
    counts = preview(p)
    assert counts["suppressed"] == {**dict.fromkeys(SUPPRESSION_REASONS, 0), "contact_cap": 1}


def test_do_not_disturb_holds_until_its_date():
    table = pd.DataFrame(
        {"msisdn": ["13800000001", "13800000002", "13800000003"], "until": [None, "2026-06-30", "2026-07-01"]}
    )
    assert active_do_not_disturb(table, START) == {"13800000001", "13800000003"}
    assert active_do_not_disturb(None, START) == set()


# --- control group and waves ------------------------------------------------------------------------


def test_the_control_group_is_reproducible_for_a_name_and_never_contacted():
    frame, decided = customers(2000)
    c = campaign(control_share=0.2)
    first = control_group(c, frame["msisdn"])
    reversed_order = control_group(c, frame["msisdn"][::-1])[::-1]
    assert (first == reversed_order).all() and 0.15 < first.mean() < 0.25
    assert not (first == control_group(campaign(name="other", control_share=0.2), frame["msisdn"])).all()
    p = plan(c, "2026-06", frame, decided, set())
    held = p.selected["status"] == "control"
    assert held.sum() == first.sum() and set(p.selected.loc[held, "msisdn"]) == set(frame["msisdn"][first])
    counts = preview(p)
    assert counts["control"] + counts["to_contact"] == counts["selected"] == 2000


def test_wave_k_is_the_kth_channel_after_k_minus_1_intervals():
    c = campaign(waves={"max_waves": 4, "days_between": 10})
    waves = wave_plan(c, [RANKING, "outbound,sms_hall,online_hall,hotline_10086,business_hall"])
    ranked = RANKING.split(",")
    for k in range(1, 5):
        assert waves[f"wave_{k}_channel"][0] == ranked[k - 1]
        assert waves[f"wave_{k}_date"][1] == START + dt.timedelta(days=10 * (k - 1))
    assert waves["wave_1_channel"][1] == "outbound" and waves["wave_1_channel_zh"][1] == "外呼"
    assert "wave_5_channel" not in waves


def test_the_waves_guidance_names_channels_in_chinese_not_by_code():
    answer = {"channel_preference": {"ranking": RANKING.split(","), "best_channel": "online_hall"}}
    item = next(i for i in guidance(answer) if i["topic"] == "campaign_waves")
    assert not any(code in item["text_zh"] for code in lib.CHANNELS)
    assert "第1波通过网上营业厅/APP" in item["text_zh"] and "第2波通过10086热线" in item["text_zh"]
    assert item["text_en"].startswith("Service waves: wave 1 on the online hall and app")


def test_cities_come_from_the_subscriber_master_and_are_required_when_asked():
    frame, decided = customers(3)
    c = campaign(targets={"cities": ["广州", "深圳"]})
    assert targeted(c, frame, decided, pd.Series(["广州", "佛山", "深圳"])).tolist() == [True, False, True]
    with pytest.raises(ConfigurationError, match="targets.cities"):
        targeted(c, frame, decided)


def test_a_snapshot_without_some_indicators_or_evaluations_is_planned_on_what_it_has():
    frame, decided = customers(2)
    frame = frame.drop(columns=["days_since_last_complaint", "black_list_flag", "contacts_outbound_3m"])
    decided = decided.drop(columns=["credit_grade", "tariff_sensitivity_level", "channel_ranking"])
    gift = campaign(purpose="care", offer={"en": "A gift.", "zh": "赠送。", "gift_yuan": 5})
    assert suppression(gift, frame, decided, set()).tolist() == [None, None]
    assert wave_plan(gift, [None, None])["wave_1_channel_zh"].isna().all()
    with pytest.raises(ConfigurationError, match="targets.credit_grade needs credit_grade"):
        targeted(campaign(targets={"credit_grade": {"at_least": 3}}), frame, decided)
