"""The synthetic world's truths (features/labels.py): each documented effect on hand-built
customers, valid probabilities, reading only the model's inputs, and determinism."""

import numpy as np
import pandas as pd
import pytest

from core import indicators as lib
from core.indicators import CHURN, CREDIT_GRADE, SENSITIVITY
from features import labels
from features.labels import World

#: One ordinary customer: every library indicator at a typical value.
BASE = {
    "msisdn": "13800000000",
    "event_timestamp": pd.Timestamp("2026-03-31 23:59:59", tz="UTC"),
    "province": "SC",
    "customer_category": "individual",
    "brand": "easyown",
    "payment_method": "postpaid_cash",
    "tenure_months": 30,
    "number_level": 0,
    "terminal_class": "smartphone_4g",
    "red_list_flag": 0,
    "black_list_flag": 0,
    "monthly_consumption": 60.0,
    "arpu_3m": 60.0,
    "bill_change_ratio": 0.0,
    "arrears_months_12m": 0,
    "arrears_amount": 0.0,
    "arrears_suspensions_12m": 0,
    "complaint_count_3m": 0,
    "complaint_count_12m": 0,
    "billing_complaint_count_12m": 0,
    "escalated_complaint_count_12m": 0,
    "days_since_last_complaint": np.nan,
    "complaint_satisfaction": np.nan,
    "refund_count_12m": 0,
    "refund_amount_12m": 0.0,
    "double_refund_count_12m": 0,
    "voice_minutes": 150.0,
    "data_mb": 3000.0,
    "sms_count": 25,
    "roaming_minutes_3m": 0.0,
    "monternet_port_count": 0,
    "business_dependence": 4,
    "influence": 18,
    "billing_inquiry_count_3m": 1,
    **{f"contacts_{c}_3m": 0 for c in lib.CHANNELS},
    "outbound_response_rate_12m": np.nan,
}


def customers(*changes: dict) -> pd.DataFrame:
    """One row per dict of changes to the ordinary customer."""
    return pd.DataFrame([{**BASE, **c} for c in changes])


def churn(*changes: dict, world: World = World()) -> np.ndarray:
    return labels.churn_probability(customers(*changes), world)


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def population(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Customers with every indicator drawn over its range, missing values included."""
    rng = np.random.default_rng(seed)
    frame = customers(*({} for _ in range(n)))
    for ind in lib.CATALOGUE:
        if ind.kind == "category":
            frame[ind.id] = rng.choice(ind.codes, n)
            continue
        high = min(ind.valid_range[1], 50) if ind.valid_range else 50
        values = rng.uniform(ind.valid_range[0] if ind.valid_range else 0, high, n)
        if ind.id in ("monthly_consumption", "arpu_3m", "data_mb", "voice_minutes", "refund_amount_12m"):
            values = np.exp(rng.normal(4, 1.5, n))
        if ind.id == "bill_change_ratio":
            values = rng.uniform(-1, 3, n)
        if ind.kind == "int":
            values = np.floor(values)
        if ind.nullable:
            values[rng.random(n) < 0.3] = np.nan
        frame[ind.id] = values
    frame["msisdn"] = [f"138{i:08d}" for i in range(n)]
    return frame


# -- interactions -----------------------------------------------------------------------------


def test_a_bill_increase_raises_churn_more_for_a_new_prepaid_customer():
    new_prepaid = {"payment_method": "prepaid", "tenure_months": 6}
    old_postpaid = {"payment_method": "bank_debit", "tenure_months": 60}
    p = churn(new_prepaid, {**new_prepaid, "bill_change_ratio": 0.5}, old_postpaid,
              {**old_postpaid, "bill_change_ratio": 0.5})  # fmt: skip
    new_rise, old_rise = p[1] - p[0], p[3] - p[2]
    assert new_rise > 5 * old_rise > 0
    assert logit(p[1:2]) - logit(p[0:1]) > 3 * (logit(p[3:4]) - logit(p[2:3]))


def test_no_increase_is_felt_before_a_line_has_three_whole_months_behind_it():
    # a line's first bills compare a full month with partial ones
    for tenure in (1, 3):
        p = churn(
            *({"payment_method": "prepaid", "tenure_months": tenure, "bill_change_ratio": r} for r in (0, 2))
        )
        assert p[1] == pytest.approx(p[0])
    p = churn(*({"payment_method": "prepaid", "tenure_months": 4, "bill_change_ratio": r} for r in (0, 2)))
    assert p[1] > 5 * p[0]


def test_a_falling_bill_raises_churn_too():
    p = churn({"bill_change_ratio": -0.6}, {"bill_change_ratio": 0.0}, {"bill_change_ratio": 0.6})
    assert p[0] > 2 * p[1] and p[2] > p[1]  # non-monotone in the bill's change


def test_roaming_makes_a_bill_increase_bite_harder():
    new_prepaid = {"payment_method": "prepaid", "tenure_months": 6}
    p = churn(
        new_prepaid,
        {**new_prepaid, "bill_change_ratio": 0.5},
        {**new_prepaid, "bill_change_ratio": 0.5, "roaming_minutes_3m": 300.0},
        {**new_prepaid, "roaming_minutes_3m": 300.0},
    )
    assert p[2] - p[0] > 1.5 * (p[1] - p[0]) > 0
    assert p[3] == pytest.approx(p[0])  # roaming alone changes nothing


def test_complaints_weigh_more_after_an_unresolved_one():
    complained = {"complaint_count_12m": 2, "complaint_count_3m": 1, "days_since_last_complaint": 40.0}
    s = labels.complaint_sensitivity_expected(
        customers(
            complained,
            {**complained, "escalated_complaint_count_12m": 1},
            {**complained, "complaint_satisfaction": 1.0},
            {**complained, "complaint_satisfaction": 4.0},
        )
    )
    assert s[1] > s[0] + 10 and s[2] > s[0] + 10 and s[3] <= s[0]
    # churn: a complaint rated 2 or worse
    p = churn({"complaint_count_3m": 1, "complaint_satisfaction": 4.0},
              {"complaint_count_3m": 1, "complaint_satisfaction": 1.0})  # fmt: skip
    assert p[1] > 2.5 * p[0]


def test_a_rejected_handling_doubles_the_complaints_weight_on_credit():
    score = labels.credit_score(
        customers({}, {"complaint_count_3m": 3}, {"complaint_count_3m": 3, "complaint_satisfaction": 1.0})
    )
    assert score[0] - score[2] > 1.8 * (score[0] - score[1])


def test_tenure_is_a_payment_record_for_postpaid_customers_only():
    rows = [{"payment_method": pay, "tenure_months": t} for pay in ("prepaid", "bank_debit") for t in (6, 36)]
    score = labels.credit_score(customers(*rows))
    assert score[3] - score[2] > 3 * (score[1] - score[0]) > 0


def test_a_new_line_starts_at_the_average_grade_and_earns_its_place():
    gold = {"customer_category": "vip_gold", "payment_method": "bank_debit", "monthly_consumption": 200.0}
    rows = [{**gold, "tenure_months": t} for t in (0, 3, 6, 36)]
    score = labels.credit_score(customers(*rows, *({**r, "arrears_months_12m": 3} for r in rows)))
    assert score[0] == pytest.approx(labels.CREDIT_NEUTRAL)
    assert score[0] < score[1] < score[2] < score[3]
    grade = labels.credit_grade_probabilities(customers(rows[0])) @ np.arange(1, 6)
    assert 2.5 < grade[0] < 3.5
    # bad conduct counts from the first day
    np.testing.assert_allclose(score[4] - score[0], score[7] - score[3])
    assert score[4] < score[0] - 1.5


def test_hotline_calls_after_a_bill_increase_are_billing_questions():
    caller = {"contacts_hotline_10086_3m": 4}
    s = labels.complaint_sensitivity_expected(
        customers({}, caller, {**caller, "bill_change_ratio": 0.6}, {"bill_change_ratio": 0.6})
    )
    assert s[1] > s[0] + 15  # calls without a bill change: problems met
    assert s[2] == pytest.approx(s[3])  # after an increase they say nothing of complaints


def test_a_problem_becomes_complaint_sensitivity_as_far_as_the_customer_voices_it():
    caller = {"contacts_hotline_10086_3m": 4}
    s = labels.complaint_sensitivity_expected(
        customers(
            {"brand": "easyown", "payment_method": "prepaid", "arpu_3m": 30.0},
            {**caller, "brand": "easyown", "payment_method": "prepaid", "arpu_3m": 30.0},
            {"brand": "gotone", "arpu_3m": 120.0},
            {**caller, "brand": "gotone", "arpu_3m": 120.0},
        )
    )
    assert s[3] - s[2] > 3 * (s[1] - s[0]) > 0


# -- thresholds and saturation ----------------------------------------------------------------


def test_the_third_complaint_in_a_quarter_is_the_step_for_credit():
    score = labels.credit_score(customers(*({"complaint_count_3m": c} for c in range(6))))
    drops = -np.diff(score)  # 0->1, 1->2, 2->3, 3->4, 4->5
    assert drops[2] > 5 * drops[1] > 0
    assert drops[3] < 0.1 * drops[2] and drops[4] < 0.1 * drops[2]


def test_the_third_complaint_in_a_quarter_is_a_step_for_complaint_sensitivity():
    rows = [
        {"complaint_count_3m": c, "complaint_count_12m": c, "days_since_last_complaint": 20.0}
        for c in (2, 3, 4)
    ]
    s = labels.complaint_sensitivity_expected(customers(*rows))
    assert s[1] - s[0] > 2 * (s[2] - s[1]) > 0


def test_the_third_arrears_month_is_a_habit():
    score = labels.credit_score(customers(*({"arrears_months_12m": a} for a in range(5))))
    drops = -np.diff(score)
    assert drops[0] == 0  # one month is an oversight
    assert drops[2] > 3 * drops[1] > 0 and drops[3] == 0


def test_refunds_weigh_by_what_the_customer_pays():
    rows = [
        {"refund_count_12m": 1, "refund_amount_12m": 60.0, "monthly_consumption": fee}
        for fee in (20.0, 300.0)
    ]
    score = labels.credit_score(customers({}, *rows))
    assert score[0] - score[1] > 3 * (score[0] - score[2])
    assert labels.refund_to_bill_ratio(customers(*rows)) == pytest.approx([60 / 61, 60 / 901])


def test_billing_inquiries_become_a_habit_and_saturate():
    rows = [{"billing_inquiry_count_3m": k, "payment_method": "prepaid"} for k in (0, 1, 4, 8, 20)]
    s = labels.tariff_sensitivity_expected(customers(*rows))
    assert s[1] == pytest.approx(s[0])  # one inquiry a quarter is routine
    assert s[2] > s[1] + 20 and s[4] == pytest.approx(s[3])


def test_a_channel_used_three_times_a_quarter_is_a_habit():
    rows = [{"contacts_sms_hall_3m": k} for k in (1, 2, 3)]
    p = labels.channel_probabilities(customers(*rows))[:, lib.CHANNELS.index("sms_hall")]
    assert p[2] - p[1] > 2 * (p[1] - p[0]) > 0


def test_a_postpaid_contract_end_frees_the_customer():
    p = churn(*({"tenure_months": t, "payment_method": "bank_debit"} for t in (11, 12, 24, 26)))
    assert p[1] > 3 * p[0] and p[2] > 3 * p[3]
    q = churn(*({"tenure_months": t, "payment_method": "prepaid"} for t in (11, 12)))
    assert q[1] < q[0]  # no contract to end


# -- non-monotone effects ---------------------------------------------------------------------


def test_very_high_data_users_churn_more_than_medium_ones():
    p = churn(*({"data_mb": gb * 1024.0} for gb in (0.3, 3.0, 40.0)))
    assert p[1] < p[0]  # engaged users stay
    assert p[2] > 3 * p[1]  # the heaviest leave for unlimited plans
    mzone = churn({"data_mb": 3 * 1024.0, "brand": "mzone"}, {"data_mb": 40 * 1024.0, "brand": "mzone"})
    assert logit(mzone[1:]) - logit(mzone[:1]) > logit(p[2:]) - logit(p[1:2])  # youth more so


def test_mass_market_bills_are_watched_most():
    s = labels.tariff_sensitivity_expected(customers(*({"arpu_3m": a} for a in (10.0, 50.0, 400.0))))
    assert s[1] > s[0] + 10 and s[1] > s[2] + 10


def test_expectations_peak_with_value_then_account_managers_take_over():
    voice = labels.complaint_voice(customers(*({"arpu_3m": a} for a in (20.0, 120.0, 600.0))))
    assert voice[1] > voice[0] + 0.5 and voice[1] > voice[2] + 0.5
    caller = {"contacts_hotline_10086_3m": 4}
    s = labels.complaint_sensitivity_expected(
        customers(*({**caller, "arpu_3m": a} for a in (20.0, 120.0, 600.0)))
    )
    assert s[1] > s[0] + 15 and s[1] > s[2] + 15


def test_only_a_bill_increase_sharpens_tariff_sensitivity_most_for_prepaid():
    rows = [
        {"payment_method": pay, "bill_change_ratio": r}
        for pay in ("prepaid", "bank_debit")
        for r in (-0.5, 0.0, 0.6)
    ]
    s = labels.tariff_sensitivity_expected(customers(*rows))
    assert s[0] == pytest.approx(s[1]) and s[3] == pytest.approx(s[4])  # a cheaper month changes nothing
    assert s[2] - s[1] > 4 * (s[5] - s[4]) > 0


def test_data_use_draws_to_the_app_on_a_smartphone_only():
    online = lib.CHANNELS.index("online_hall")
    rows = [
        {"terminal_class": t, "data_mb": gb * 1024.0}
        for t in ("smartphone_5g", "feature_phone")
        for gb in (0.1, 10)
    ]
    p = labels.channel_probabilities(customers(*rows))[:, online]
    assert p[1] > p[0] + 0.05
    assert p[3] == pytest.approx(p[2])


# -- provinces --------------------------------------------------------------------------------


def test_province_effects_apply_only_where_the_model_reads_the_province():
    readers = set(lib.BY_ID["province"].used_by)
    assert labels.PROVINCE_INPUT == readers == {SENSITIVITY, CHURN}
    for evaluation, inputs in labels.INPUTS.items():
        assert ("province" in inputs) == (evaluation in readers)
    # a province effect that would touch the credit truth is ignored: its model does not see it
    frame = customers({"province": "HE"}, {"province": "GD"})
    assert np.all(labels.province_factor(frame, CREDIT_GRADE, "bill_increase") == 1.0)


def test_a_province_reacts_differently_to_the_same_change():
    rise = {}
    for province in ("HE", "GD"):
        before, after = churn(
            {"province": province, "payment_method": "prepaid", "tenure_months": 6},
            {"province": province, "payment_method": "prepaid", "tenure_months": 6, "bill_change_ratio": 0.5},
        )
        rise[province] = logit(np.array(after)) - logit(np.array(before))
    assert rise["HE"] == pytest.approx(labels.PROVINCE_EFFECTS["HE"]["bill_increase"] * rise["GD"])
    heavy = churn({"province": "GD", "data_mb": 40 * 1024.0}, {"province": "SC", "data_mb": 40 * 1024.0})
    assert heavy[0] > 1.5 * heavy[1]
    tariff = labels.tariff_sensitivity_expected(
        customers(
            *({"province": p, "payment_method": "prepaid", "bill_change_ratio": 0.4} for p in ("SC", "GD"))
        )
    )
    assert tariff[0] > tariff[1] + 2.0


# -- the drift switch -------------------------------------------------------------------------


def test_the_drift_switch_raises_mzone_and_prepaid_churn():
    rows = ({"brand": "mzone"}, {"brand": "gotone"})
    before, after = churn(*rows), churn(*rows, world=World(tariff_change=True, competitor_offer=True))
    assert after[0] > 2.5 * before[0]
    assert after[1] == pytest.approx(before[1])
    # the tariff change sends the customers nothing ties shopping around
    prepaid = ({"payment_method": "prepaid"},)
    assert churn(*prepaid, world=World(tariff_change=True))[0] > 1.4 * churn(*prepaid)[0]


# -- validity, inputs, determinism ------------------------------------------------------------


def test_probabilities_are_valid_over_the_indicators_ranges():
    frame = population()
    grade = labels.credit_grade_probabilities(frame)
    channel = labels.channel_probabilities(frame)
    for p in (grade, channel):
        assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    for world in (World(), World(True, True)):
        p = labels.churn_probability(frame, world)
        assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    for f in (labels.tariff_sensitivity_expected, labels.complaint_sensitivity_expected):
        s = f(frame)
        assert np.isfinite(s).all() and ((s >= 0) & (s <= 100)).all()


def test_each_truth_reads_only_its_inputs():
    frame = population(500)
    shuffled = frame.copy()
    rng = np.random.default_rng(1)
    truths = {
        lib.CREDIT_GRADE: [labels.credit_grade_probabilities],
        lib.SENSITIVITY: [labels.tariff_sensitivity_expected, labels.complaint_sensitivity_expected],
        lib.CHURN: [lambda f: labels.churn_probability(f, World())],
        lib.CHANNEL_PREFERENCE: [labels.channel_probabilities],
    }
    for evaluation, functions in truths.items():
        shuffled = frame.copy()
        for column in frame.columns:
            if column not in labels.INPUTS[evaluation]:
                shuffled[column] = rng.permutation(frame[column].to_numpy())
        for f in functions:
            np.testing.assert_array_equal(f(frame), f(shuffled), err_msg=evaluation)


def test_same_seed_same_truth_other_seed_other_labels():
    frame = population(500)
    a = labels.truth_for_snapshot(frame, World(), np.random.default_rng(5))
    b = labels.truth_for_snapshot(frame, World(), np.random.default_rng(5))
    c = labels.truth_for_snapshot(frame, World(), np.random.default_rng(6))
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    pd.testing.assert_frame_equal(a[0], c[0])  # the oracle is a function, only the draws differ
    assert not a[1]["credit_grade"].equals(c[1]["credit_grade"])
