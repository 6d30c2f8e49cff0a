"""Indicator formulas against values computed by hand on 3-customer frames."""

import math

import numpy as np
import pandas as pd
import pytest

from core import indicators as lib
from features.build import aggregate_month, indicators_at
from features.schemas import TABLES

NUMBERS = ["13800000001", "13800000002", "13800000003"]


def _empty_month():
    return {
        name: pd.DataFrame({c: pd.Series(dtype=object) for c in t.column_names})
        for name, t in TABLES.items()
        if t.monthly
    }


def _month(
    month,
    fees,
    arrears=(0, 0, 0),
    complaints=(),
    refunds=(),
    contacts=(),
    inquiries=0,
    data=(1000.0, None, 0.0),
):
    t = _empty_month()
    t["monthly_bills"] = pd.DataFrame({"msisdn": NUMBERS, "bill_month": month, "total_fee": fees})
    t["payments"] = pd.DataFrame(
        {"msisdn": NUMBERS, "arrears_amount": arrears, "suspended_for_arrears": [a > 50 for a in arrears]}
    )
    t["usage"] = pd.DataFrame(
        {
            "msisdn": NUMBERS,
            "voice_minutes": [100.0, 0.0, 5.0],
            "data_mb": list(data),
            "sms_count": [3, 0, 0],
            "mms_count": [0, 0, 1],
            "roaming_minutes": [0.0, 10.0, 0.0],
            "boundary_roaming_minutes": [0.0, 5.0, 0.0],
            "monternet_ports": [2, 0, 0],
            "ringback_tone": [True, False, False],
            "distinct_callees": [12, 0, 1],
        }
    )
    if complaints:
        t["complaints"] = pd.DataFrame(
            complaints, columns=["msisdn", "complaint_time", "category", "outcome", "satisfaction"]
        )
    if refunds:
        t["refunds"] = pd.DataFrame(refunds, columns=["msisdn", "amount", "is_double_refund"])
    if contacts:
        t["channel_contacts"] = pd.DataFrame(contacts, columns=["msisdn", "channel", "campaign_response"])
    t["billing_inquiries"] = pd.DataFrame({"msisdn": [NUMBERS[0]] * inquiries})
    return t


@pytest.fixture()
def people():
    subscribers = pd.DataFrame(
        {
            "msisdn": NUMBERS,
            "province": "GD",
            "customer_category": ["vip_gold", "individual", "individual"],
            "brand": ["gotone", "mzone", "easyown"],
            "payment_method": ["bank_debit", "prepaid", "postpaid_cash"],
            "activation_date": pd.to_datetime(["2020-01-15", "2025-12-20", "2019-06-01"]).date,
            "number_level": [3, 0, 1],
            "terminal_class": ["smartphone_5g", None, "feature_phone"],
            # the third line closes in February: absent from the February snapshot
            "close_date": [None, None, pd.Timestamp("2026-02-10").date()],
        }
    )
    lists = pd.DataFrame(
        {
            "msisdn": [NUMBERS[0], NUMBERS[1]],
            "list_type": ["red", "black"],
            "listed_date": pd.to_datetime(["2025-06-01", "2026-02-15"]).date,
        }
    )
    return subscribers, lists


def _history(subscribers):
    index = pd.Index(subscribers["msisdn"])
    jan = _month(
        "2026-01",
        [100.0, 20.0, 50.0],
        arrears=(0, 30, 0),
        complaints=[
            (NUMBERS[1], pd.Timestamp("2026-01-10 12:00"), "billing", "escalated", 2.0),
            (NUMBERS[1], pd.Timestamp("2026-01-20 08:00"), "network", "resolved", np.nan),
        ],
        refunds=[(NUMBERS[1], 15.0, True)],
        contacts=[
            (NUMBERS[0], "online_hall", None),
            (NUMBERS[0], "outbound", True),
            (NUMBERS[0], "outbound", False),
            (NUMBERS[2], "business_hall", None),
        ],
        inquiries=2,
    )
    feb = _month(
        "2026-02",
        [130.0, 0.0, 50.0],
        arrears=(0, 60, 0),
        complaints=[(NUMBERS[1], pd.Timestamp("2026-02-27 09:00"), "service", "resolved", 4.0)],
        refunds=[(NUMBERS[1], 5.5, False), (NUMBERS[0], 8.0, False)],
        inquiries=1,
    )
    return [aggregate_month(index, jan), aggregate_month(index, feb)]


def test_january_snapshot_by_hand(people):
    subscribers, lists = people
    history = _history(subscribers)
    jan = indicators_at(subscribers, lists, history[:1], "2026-01").set_index("msisdn")
    a, b = jan.loc[NUMBERS[0]], jan.loc[NUMBERS[1]]
    assert a["tenure_months"] == 72  # 2020-01-15 .. 2026-01-31: 2208 days / 30.4375
    assert b["tenure_months"] == 1
    assert b["complaint_count_3m"] == 2 and b["billing_complaint_count_12m"] == 1
    assert b["escalated_complaint_count_12m"] == 1
    assert b["complaint_satisfaction"] == 2.0  # the unanswered survey does not count
    assert b["days_since_last_complaint"] == 11  # Jan 20 08:00 -> Jan 31 23:59:59
    assert math.isnan(a["complaint_satisfaction"]) and math.isnan(a["days_since_last_complaint"])
    assert b["refund_count_12m"] == 1 and b["double_refund_count_12m"] == 1
    assert b["arrears_months_12m"] == 1 and b["arrears_suspensions_12m"] == 0
    assert a["business_dependence"] == 5  # voice, data, sms, ring-back, SP ports
    assert b["business_dependence"] == 1  # roaming only (data unknown, no voice)
    assert math.isnan(b["data_mb"])
    assert b["roaming_minutes_3m"] == 15.0
    assert a["contacts_online_hall_3m"] == 1 and a["contacts_outbound_3m"] == 2
    assert a["outbound_response_rate_12m"] == 0.5
    assert a["billing_inquiry_count_3m"] == 2
    assert a["red_list_flag"] == 1
    assert b["black_list_flag"] == 0  # listed on Feb 15: after the January snapshot
    assert b["terminal_class"] == "unknown"
    assert a["bill_change_ratio"] == 0.0  # no history before January


def test_february_snapshot_windows_and_closures(people):
    subscribers, lists = people
    feb = indicators_at(subscribers, lists, _history(subscribers), "2026-02").set_index("msisdn")
    assert NUMBERS[2] not in feb.index  # closed on Feb 10
    a, b = feb.loc[NUMBERS[0]], feb.loc[NUMBERS[1]]
    assert a["bill_change_ratio"] == pytest.approx(130 / 100 - 1)
    assert a["arpu_3m"] == pytest.approx(115.0)
    assert b["complaint_count_3m"] == 3
    assert b["complaint_satisfaction"] == pytest.approx(3.0)  # (2 + 4) / 2
    assert b["days_since_last_complaint"] == 1
    assert b["refund_count_12m"] == 2 and b["refund_amount_12m"] == pytest.approx(20.5)
    assert b["arrears_months_12m"] == 2 and b["arrears_suspensions_12m"] == 1
    assert b["black_list_flag"] == 1
    assert a["billing_inquiry_count_3m"] == 3


def test_every_catalogue_indicator_is_built_within_its_range(people):
    subscribers, lists = people
    feb = indicators_at(subscribers, lists, _history(subscribers), "2026-02")
    assert list(feb.columns[2:]) == list(lib.BY_ID)
    for ind in lib.CATALOGUE:
        values = feb[ind.id]
        if not ind.nullable:
            assert values.notna().all(), ind.id
        if ind.valid_range:
            lo, hi = ind.valid_range
            assert values.dropna().between(lo, hi).all(), ind.id
        if ind.codes:
            assert set(values) <= set(ind.codes), ind.id


def test_library_declares_the_credit_specification():
    assert len(lib.credit_indicators("mandatory")) == 9
    assert {i.id for i in lib.credit_indicators("optional")} == {
        "number_level",
        "influence",
        "business_dependence",
        "refund_amount_12m",
        "monternet_port_count",
        "double_refund_count_12m",
    }
    for task in lib.EVALUATIONS:
        assert lib.for_task(task), task


def test_unknown_indicator_names_the_valid_ones():
    from core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="valid indicators: .*customer_category"):
        lib.indicator("influense")


def test_label_truth_reads_only_the_task_contract():
    from features.labels import INPUTS

    for task, inputs in INPUTS.items():
        contract = {i.id for i in lib.for_task(task)}
        assert set(inputs) <= contract, (task, set(inputs) - contract)


def test_small_gifts_count_within_twelve_months_up_to_the_snapshot(people):
    subscribers, lists = people
    index = pd.Index(subscribers["msisdn"])
    gifts = {
        "2025-02": [(NUMBERS[0], 50.0)],  # in January's 12 months, not in February's
        "2026-01": [(NUMBERS[0], 20.0)],
        "2026-02": [(NUMBERS[0], 10.0), (NUMBERS[1], 5.0)],  # after the January snapshot
    }
    history = []
    for month in pd.period_range("2025-02", "2026-02", freq="M").astype(str):
        t = _month(month, [10.0, 10.0, 10.0])
        if month in gifts:
            t["small_gifts"] = pd.DataFrame(gifts[month], columns=["msisdn", "amount"])
        history.append(aggregate_month(index, t))
    jan = indicators_at(subscribers, lists, history[:-1], "2026-01").set_index("msisdn")
    feb = indicators_at(subscribers, lists, history, "2026-02").set_index("msisdn")
    assert jan.loc[NUMBERS[0], "gift_count_12m"] == 2 and jan.loc[NUMBERS[0], "gift_amount_12m"] == 70.0
    assert jan.loc[NUMBERS[1], "gift_count_12m"] == 0 and jan.loc[NUMBERS[1], "gift_amount_12m"] == 0.0
    assert feb.loc[NUMBERS[0], "gift_count_12m"] == 2 and feb.loc[NUMBERS[0], "gift_amount_12m"] == 30.0
    assert feb.loc[NUMBERS[1], "gift_count_12m"] == 1 and feb.loc[NUMBERS[1], "gift_amount_12m"] == 5.0
    # the black-list entry of Feb 15 shows from the February snapshot on
    assert jan.loc[NUMBERS[1], "black_list_flag"] == 0 and feb.loc[NUMBERS[1], "black_list_flag"] == 1


def test_the_credit_contract_reads_the_imported_lists_and_gifts():
    credit = {i.id: i for i in lib.for_task(lib.CREDIT_GRADE)}
    directions = {k: credit[k].credit_direction for k in ("red_list_flag", "black_list_flag")}
    assert directions == {"red_list_flag": 1, "black_list_flag": -1}
    assert credit["gift_count_12m"].sources == ("small_gifts",) and "gift_amount_12m" in credit
    assert {"red_list_flag", "black_list_flag"} <= {i.id for i in lib.for_task(lib.CHURN)}
