"""Core customers kept (核心客户保有): the value rule, the two warning methods, the list by capacity,
the retention advice, and a province file's retention section refused at its key."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigurationError
from core.retention_config import Capacity, CoreRule, RetentionConfig
from core.tasks import guidance
from features.provinces import read_province
from serving.retention import (
    RetentionCutoff,
    assess,
    composite_index,
    composite_warned,
    core_customers,
    mark,
    retention_list,
    threshold_warnings,
)

FRAME = pd.DataFrame(
    {
        "msisdn": ["13800000001", "13800000002", "13800000003"],
        "arpu_3m": [150.0, 150.0, 40.0],
        "tenure_months": [36, 12, 2],
        "customer_category": ["individual", "individual", "vip_gold"],
        "bill_change_ratio": [-0.5, 0.1, -0.3],
        "arrears_amount": [0.0, 25.0, np.nan],
        "complaint_count_3m": [0, 3, 1],
        "voice_minutes": [100.0, 300.0, 50.0],
    }
)
PREVIOUS = pd.DataFrame({"msisdn": ["13800000003", "13800000001"], "voice_minutes": [100.0, 400.0]})


def test_core_customers_are_valuable_and_loyal_or_in_a_core_category():
    rule = CoreRule(min_arpu_3m=100, min_tenure_months=24, categories=("vip_gold",))
    assert core_customers(FRAME, rule).tolist() == [True, False, True]
    # a category the province does not count, and data without the category
    assert core_customers(FRAME, CoreRule(categories=())).tolist() == [True, False, False]
    assert core_customers(FRAME.drop(columns="customer_category"), rule).tolist() == [True, False, False]


def test_each_threshold_rule_fires_on_its_own_customers_and_is_named():
    warned = threshold_warnings(FRAME, RetentionConfig(), PREVIOUS)
    assert warned["rule_bill_drop"].tolist() == [True, False, True]  # -0.3 is at the threshold
    assert warned["rule_arrears"].tolist() == [False, True, False]  # a missing value never fires
    assert warned["rule_complaints"].tolist() == [False, True, False]
    # voice minutes 100 after 400 (-75%), none the month before, 50 after 100 (-50%)
    assert warned["rule_usage_falling"].tolist() == [True, False, True]
    assert warned["rules_fired"].tolist() == [
        "bill_drop;usage_falling",
        "arrears;complaints",
        "bill_drop;usage_falling",
    ]
    assert warned["threshold_warned"].all()
    two = RetentionConfig(rules_to_warn=2)
    assert threshold_warnings(FRAME, two, None)["threshold_warned"].tolist() == [False, True, False]


def test_the_composite_index_is_the_weighted_mean_of_standard_scores():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [10.0, 10.0, 40.0]})
    za = np.array([-1.0, 0.0, 1.0]) / np.std([1, 2, 3])
    zb = (np.array([10.0, 10.0, 40.0]) - 20) / np.std([10, 10, 40])
    expected = (2 * za - 1 * zb) / 3
    got = composite_index(frame, {"a": 2.0, "b": -1.0})
    np.testing.assert_allclose(got, expected)
    assert composite_warned(got, 50).tolist() == list(expected >= np.median(expected))


def test_the_capacity_lists_exactly_the_top_share_of_core_customers_per_province():
    rng = np.random.default_rng(3)
    for n_core, share, size in ((200, 0.05, 10), (100, 0.29, 29), (37, 0.1, 3), (10, 0.05, 1)):
        p = rng.random(n_core + 50)
        core = np.r_[np.ones(n_core, bool), np.zeros(50, bool)]
        rank, cutoff = retention_list(p, core, Capacity(share=share))
        listed = np.flatnonzero(rank)
        assert len(listed) == size
        assert core[listed].all()
        assert set(listed) == set(np.argsort(-np.where(core, p, -1))[: len(listed)])
        assert cutoff == p[listed].min()
        assert sorted(rank[listed]) == list(range(1, len(listed) + 1))
    assert len(np.flatnonzero(retention_list(p, core, Capacity(count=7))[0])) == 7
    assert retention_list(p, np.zeros(len(p), bool), Capacity())[0].sum() == 0


def _answer(block: dict) -> dict:
    return {"churn": block}


def test_the_retention_advice_follows_the_list_not_the_fixed_band():
    probability = np.array([0.09, 0.20, 0.12])  # the second is in the high band (>= 0.15)
    blocks = [{"probability": p, "band": "high" if p >= 0.15 else "medium"} for p in probability]
    cutoff = RetentionCutoff("GD", "2026-06", 0.09, 2, 2, "now")
    mark(blocks, probability, FRAME, None, cutoff)  # customers 1 and 3 are core; 2 is not
    assert [b["retention"] for b in blocks] == [True, False, True]
    topics = [[g["topic"] for g in guidance(_answer(b))] for b in blocks]
    assert ["retention" in t for t in topics] == [True, False, True]
    listed = {g["topic"]: g for g in guidance(_answer(blocks[0]))}["retention"]
    assert "retention list" in listed["text_en"] and "保有名单" in listed["text_zh"]
    # without a list, the high band decides as before
    assert "retention" in [g["topic"] for g in guidance(_answer({"probability": 0.2, "band": "high"}))]


def test_assess_gives_each_customer_the_list_the_rules_the_index_and_a_reason_in_two_languages():
    table, cutoff = assess(FRAME, np.array([0.3, 0.9, 0.1]), RetentionConfig(), PREVIOUS)
    assert table["core"].tolist() == [True, False, True]
    assert table["list_rank"].tolist() == [1, 0, 0] and cutoff == 0.3  # 5% of two core customers: one
    assert "rules fired: Bill change ≤ -0.3" in table["reason_en"][0]
    assert table["reason_zh"][1].startswith("非核心客户") and "投诉记录≥2" in table["reason_zh"][1]


def _refused(tmp_path, body: str) -> str:
    path = tmp_path / "GD.yaml"
    path.write_text("province: GD\n" + textwrap.dedent(body).lstrip())
    with pytest.raises(ConfigurationError) as err:
        read_province(path)
    return str(err.value)


@pytest.mark.parametrize(
    "body, words",
    [
        ("retention:\n  capacity: {share: 2}\n", ["retention.capacity.share", "less than or equal to 1"]),
        ("retention:\n  core_rule: {min_arpu_3m: -5}\n", ["retention.core_rule.min_arpu_3m"]),
        ("retention:\n  core_rule: {categories: [vip_platinum]}\n", ["retention.core_rule.categories"]),
        (
            "retention:\n  warning_rules:\n    drop: {indicator: brand, at_least: 1}\n",
            ["retention.warning_rules.drop.indicator", "non-numeric indicator 'brand'"],
        ),
        (
            "retention:\n  warning_rules:\n    drop: {indicator: bill_change_ratio, at_most: -5}\n",
            ["retention.warning_rules.drop", "outside its valid range"],
        ),
        (
            "retention:\n  warning_rules:\n    drop: {indicator: voice_minutes, change: true, at_most: 99}\n",
            ["retention.warning_rules.drop", "outside its relative change"],
        ),
        ("retention:\n  composite: {weights: {arpu_3m: 1e9}}\n", ["retention.composite.weights.arpu_3m"]),
        ("retention:\n  composite: {percentile: 10}\n", ["retention.composite.percentile"]),
        ("retention:\n  rules_to_warn: 9\n", ["rules_to_warn is 9"]),
        ("retention:\n  capacity: {size: 5}\n", ["retention.capacity.size"]),
    ],
)
def test_a_bad_retention_section_is_refused_naming_the_key(tmp_path, body, words):
    message = _refused(tmp_path, body)
    for word in words:
        assert word in message, message


def test_a_good_retention_section_overrides_the_group_defaults(tmp_path):
    path = tmp_path / "GD.yaml"
    path.write_text(
        "province: GD\nretention:\n  core_rule: {min_arpu_3m: 80}\n  capacity: {count: 300}\n"
        "  warning_rules:\n    arrears: {indicator: arrears_amount, at_least: 50}\n"
    )
    config = read_province(path).retention
    assert config.core_rule.min_arpu_3m == 80 and config.core_rule.min_tenure_months == 24
    assert config.capacity.count == 300 and list(config.warning_rules) == ["arrears"]


def test_the_command_refuses_an_unknown_province_or_month_before_reading_anything(tmp_path):
    from core.settings import Settings
    from serving.retention_list import run_retention

    settings = Settings(workdir=tmp_path)
    with pytest.raises(ConfigurationError, match="unknown province '../X'"):
        run_retention(settings, None, "../x")
    with pytest.raises(ConfigurationError, match="month '2026-6' is not a month"):
        run_retention(settings, None, "GD", month="2026-6")
    assert not any(tmp_path.iterdir())


def test_a_section_past_its_limits_is_refused(tmp_path):
    rules = "".join(f"    r{k}: {{indicator: arrears_amount, at_least: 1}}\n" for k in range(21))
    assert "retention.warning_rules" in _refused(tmp_path, "retention:\n  warning_rules:\n" + rules)
    assert "retention.capacity.count" in _refused(tmp_path, "retention:\n  capacity: {count: 1e12}\n")
    assert "retention.composite" in _refused(tmp_path, "retention:\n  composite: {weights: {arpu_3m: 0}}\n")


def test_a_new_cut_off_makes_prepared_answers_stale():
    from serving.champions import ModelSet
    from serving.prepared import generation

    cutoff = RetentionCutoff("GD", "2026-06", 0.09, 2, 40, "now")
    without, listed = ModelSet({}, {}), ModelSet({}, {}, retention=cutoff)
    moved = ModelSet({}, {}, retention=RetentionCutoff("GD", "2026-07", 0.08, 2, 40, "later"))
    assert len({generation("w", m, "c") for m in (without, listed, moved)}) == 3


def test_a_rule_named_like_a_column_of_the_list_keeps_its_own_column():
    from core.retention_config import ThresholdRule

    config = RetentionConfig(warning_rules={"core": ThresholdRule(indicator="arrears_amount", at_least=1)})
    table, _ = assess(FRAME, np.array([0.3, 0.9, 0.1]), config)
    assert table["core"].tolist() == [True, False, True]
    assert table["rule_core"].tolist() == [False, True, False]
