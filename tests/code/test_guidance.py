"""The credit grade's differentiated handling: complete, monotone, overridden by a province file
(and a bad override refused naming grade and topic), the black-list rule, the CRM file's columns."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core import guidance as handling
from core.errors import ConfigurationError
from core.tasks import CREDIT_GRADES, TASKS, crm_columns, guidance
from features.provinces import EXAMPLES_DIR, read_province
from serving.batch import interface_rows, interface_schema
from serving.online import Features

CREDIT = TASKS["credit_grade"]


def _onehot(grades) -> np.ndarray:
    """Grade probabilities certain of each grade."""
    p = np.full((len(grades), 5), 1e-6)
    p[np.arange(len(grades)), np.asarray(grades) - 1] = 1.0
    return p


def _items(grade: int, config=None, **others) -> dict[str, dict]:
    return {g["topic"]: g for g in guidance({"credit_grade": {"code": grade}, **others}, config)}


@pytest.mark.parametrize("grade", [g[0] for g in CREDIT_GRADES])
def test_every_grade_has_every_topic_in_both_languages(grade):
    items = _items(grade)
    assert list(items) == [handling.SUMMARY, *handling.TOPICS]
    for topic, item in items.items():
        assert item["text_en"].strip() and item["text_zh"].strip(), (grade, topic)
        if topic != handling.SUMMARY:
            assert item["value"] == handling.CREDIT_HANDLING[grade][topic]


def test_a_better_grade_never_gets_stricter_handling_by_default():
    assert handling.monotone_breaks(handling.CREDIT_HANDLING) == []
    # the finding: grade 4 may reopen before payment, so grade 5 may too
    assert (
        handling.CREDIT_HANDLING[5]["reopen_before_payment"]
        and handling.CREDIT_HANDLING[4]["reopen_before_payment"]
    )
    stricter = {g: dict(h) for g, h in handling.CREDIT_HANDLING.items()}
    stricter[5]["gift_ceiling"] = 0
    assert handling.monotone_breaks(stricter) == [
        "grade 5's gift_ceiling (0) is stricter than grade 4's (10); "
        "a better grade never gets stricter handling"
    ]


def test_opportunity_marketing_follows_the_grade_and_the_sensitivities():
    assert _items(2)["opportunity_marketing"]["value"] is False
    assert _items(3)["opportunity_marketing"]["value"] is True
    held = _items(5, tariff_sensitivity={"level": "high"})["opportunity_marketing"]
    assert held["value"] is False and "sensitive" in held["text_en"]
    assert _items(5, complaint_sensitivity={"level": "medium"})["opportunity_marketing"]["value"] is True


def test_the_example_province_files_override_values_and_texts():
    gd, he = read_province(EXAMPLES_DIR / "GD.yaml"), read_province(EXAMPLES_DIR / "HE.yaml")
    five = _items(5, gd)
    assert five["gift_ceiling"]["value"] == 50 and "50" in five["gift_ceiling"]["text_zh"]
    assert five["complaint_handling"]["text_zh"].startswith("信用极好") and "钻石" not in str(five)
    assert five["time_limit"]["value"] == handling.CREDIT_HANDLING[5]["time_limit"]  # not overridden
    one = _items(1, gd)
    assert one["time_limit"]["value"] == 96 and one["time_limit"]["text_zh"].startswith("经计费查证后")
    assert _items(3, he)["international_roaming"]["value"] == "deposit_required"
    assert _items(3)["international_roaming"]["value"] == "standard"


def _refused(tmp_path, text: str) -> str:
    path = tmp_path / "GD.yaml"
    path.write_text("province: GD\n" + textwrap.dedent(text))
    with pytest.raises(ConfigurationError) as err:
        read_province(path)
    return str(err.value)


@pytest.mark.parametrize(
    "text, words",
    [
        (
            "guidance:\n  7:\n    gift_ceiling: {value: 5}\n",
            [":3:", "unknown credit grade 7", "1 (信用极差)"],
        ),
        (
            "guidance:\n  5:\n    gift: {value: 5}\n",
            [":3:", "guidance.5", "unknown guidance topic 'gift'", "did you mean 'gift_ceiling'"],
        ),
        (
            "guidance:\n  4:\n    gift_ceiling: {value: -5}\n",
            [":4:", "guidance.4.gift_ceiling.value", "from 0 to 500, got -5"],
        ),
        (
            "guidance:\n  3:\n    time_limit: {value: 0}\n",
            [":4:", "guidance.3.time_limit.value", "a time limit in hours from 1 to 720"],
        ),
        (
            "guidance:\n  3:\n    customer_care: {value: spa_day}\n",
            ["guidance.3.customer_care.value", "'callback'"],
        ),
        ("guidance:\n  3:\n    agent_priority: {value: 1}\n", ["guidance.3.agent_priority.value", "boolean"]),
        (
            "guidance:\n  2:\n    complaint_handling:\n      en: " + "x" * 201 + "\n      zh: 查证\n",
            [":5:", "guidance.2.complaint_handling.en", "at most 200 characters"],
        ),
        ("guidance:\n  2:\n    verification: {en: Verify.}\n", ["guidance.2.verification", "both languages"]),
        ('guidance:\n  2:\n    verification: {en: "a\\x1b[2Jb", zh: 查证}\n', ["control characters"]),
        ("guidance:\n  5: {en: Fast., zh: 快。}\n", ["guidance.5", "complaint_handling: {en: ..., zh: ...}"]),
        (
            "guidance:\n  5:\n    gift_ceiling: {value: 5}\n",
            ["grade 5's gift_ceiling (5) is stricter than grade 4's"],
        ),
        (
            "guidance:\n  2:\n    refund_order: {value: refund_first}\n",
            [
                "grade 3's refund_order (verify_first) is stricter",
                "grade 2: refund_order refund_first contradicts",
            ],
        ),
    ],
)
def test_a_bad_override_is_refused_naming_grade_and_topic(tmp_path, text, words):
    message = _refused(tmp_path, text)
    for word in words:
        assert word in message, message


def test_the_black_list_caps_the_grade_at_two_and_leaves_lower_grades():
    p = _onehot([5, 4, 3, 2, 1, 5])
    listed = pd.DataFrame({"black_list_flag": [1, 1, 1, 1, 1, 0]})
    assert CREDIT.kind.decide(p, None, listed).tolist() == [2, 2, 2, 2, 1, 5]
    assert CREDIT.kind.decide(p, None, pd.DataFrame({"tenure_months": range(6)})).tolist() == [
        5,
        4,
        3,
        2,
        1,
        5,
    ]
    assert CREDIT.kind.decide(p).tolist() == [5, 4, 3, 2, 1, 5]
    # the online store's object columns, None where the list is unknown
    online = Features({"black_list_flag": np.array([1, None, 0, 1, None, 1], dtype=object)}, [None] * 6)
    assert CREDIT.kind.decide(p, None, online).tolist() == [2, 4, 3, 2, 1, 2]


def test_a_capped_answer_names_the_rule_and_takes_the_capped_grade_s_guidance():
    p = _onehot([5, 2, 4])
    blocks = CREDIT.kind.answer_blocks(p, {})
    for block in blocks:
        block["reasons"] = [{"code": "credit_grade:tenure_months:+", "text_en": "t", "text_zh": "t"}]
    CREDIT.kind.overrule("credit_grade", blocks, pd.DataFrame({"black_list_flag": [1, 1, 0]}))
    capped, poor, free = blocks
    assert (capped["code"], capped["label_zh"], capped["label_en"]) == (2, "信用较差", "poor")
    rule = capped["reasons"][0]
    assert rule["code"] == "credit_grade:rule:black_list" and rule["rule"] == "black_list"
    assert "black list" in rule["text_en"] and "said 5" in rule["text_en"] and "黑名单" in rule["text_zh"]
    assert len(capped["reasons"]) == 2  # the model's reasons follow
    assert poor["code"] == 2 and [r["code"] for r in poor["reasons"]] == ["credit_grade:tenure_months:+"]
    assert free["code"] == 4 and len(free["reasons"]) == 1
    items = {g["topic"]: g for g in guidance({"credit_grade": capped})}
    assert items["refund_order"]["value"] == "verify_first" and items["gift_ceiling"]["value"] == 0


def test_the_crm_file_carries_the_capped_grade_and_its_handling():
    gd = read_province(EXAMPLES_DIR / "GD.yaml")
    n = 4
    outputs = {
        "credit_grade": _onehot([5, 5, 1, 3]),
        "tariff_sensitivity": np.array([10.0, 90.0, 10.0, 10.0]),
        "complaint_sensitivity": np.array([10.0, 10.0, 10.0, 10.0]),
    }
    indicators = pd.DataFrame(
        {
            "msisdn": [f"1380000000{i}" for i in range(n)],
            "province": "GD",
            "black_list_flag": [0, 0, 0, 1],
        }
    )
    columns = crm_columns(outputs, SimpleNamespace(grade_cutoffs=None, guidance=gd.guidance), indicators)
    assert columns["credit_grade"].tolist() == [5, 5, 1, 2]
    assert columns["credit_gift_ceiling_yuan"].tolist() == [50, 50, 0, 0]
    assert columns["credit_time_limit_hours"].tolist() == [12, 12, 96, 72]
    assert columns["credit_refund_order"].tolist() == [
        "refund_first",
        "refund_first",
        "verify_first",
        "verify_first",
    ]
    assert columns["credit_reopen_before_payment"].tolist() == [True, True, False, False]
    assert columns["credit_opportunity_marketing"].tolist() == [
        True,
        False,
        False,
        False,
    ]  # 2nd: tariff-sensitive

    models = SimpleNamespace(
        probabilities=lambda frame: outputs,
        config=gd,
        versions={"credit_grade": "1"},
        methods={"credit_grade": "scorecard"},
        retention=None,  # no retention list computed
    )
    table = interface_rows(models, indicators, "2026-10", "2026-11-01T00:00:00+00:00")
    assert table.schema == interface_schema()
    types = {f.name: str(f.type) for f in table.schema}
    expected = {
        "credit_verification": "string",
        "credit_refund_order": "string",
        "credit_gift_ceiling_yuan": "int16",
        "credit_time_limit_hours": "int16",
        "credit_reopen_before_payment": "bool",
        "credit_international_roaming": "string",
        "credit_agent_priority": "bool",
        "credit_customer_care": "string",
        "credit_opportunity_marketing": "bool",
    }
    assert {k: types[k] for k in expected} == expected
    assert table.column("credit_grade").to_pylist() == [5, 5, 1, 2]
    assert table.column("model_methods").to_pylist() == ["credit_grade=scorecard"] * n  # who answered
    assert table.column("churn_probability").null_count == n  # no churn model: empty, as before
