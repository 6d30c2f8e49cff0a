"""The managers' overview as pure functions, on hand-made frames."""

from __future__ import annotations

import pandas as pd
import pytest

from serving.console.overview import adhoc_count, cross_table, grade_overview, read_choices


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "province": ["GD", "GD", "HE", "HE", "HE"],
            "credit_grade": [1, 5, 1, 3, 1],
            "customer_category": ["individual", "vip_gold", "individual", "group_member", "individual"],
            "brand": ["gotone", "gotone", "easyown", "mzone", "easyown"],
            "payment_method": ["prepaid", "bank_debit", "prepaid", "prepaid", "postpaid_cash"],
            "complaint_count_3m": [2, 0, 4, 1, 0],
        }
    )


def test_grade_overview_counts_every_grade_worst_first(frame):
    view = grade_overview(frame, "en")
    assert view["customers"] == 5
    assert [g["code"] for g in view["grades"]] == [1, 2, 3, 4, 5]
    assert [g["count"] for g in view["grades"]] == [3, 0, 1, 0, 1]
    assert view["grades"][0]["label"] == "extremely poor"
    assert view["grades"][0]["share"] == pytest.approx(0.6)
    assert view["complaints_3m"] == 7
    assert grade_overview(frame.iloc[:0])["grades"][0] == {
        "code": 1,
        "label": "信用极差",
        "count": 0,
        "share": 0.0,
    }


def test_cross_table_rows_in_library_order_with_totals(frame):
    table = cross_table(frame, "customer_category", "zh")
    assert [r["value"] for r in table["rows"]] == ["individual", "group_member", "vip_gold"]
    assert table["rows"][0]["label"] == "个人客户"
    assert table["rows"][0]["counts"] == [3, 0, 0, 0, 0]
    assert table["totals"] == [3, 0, 1, 0, 1] and table["total"] == 5
    by_province = cross_table(frame, "province")
    assert {r["value"]: r["total"] for r in by_province["rows"]} == {"GD": 2, "HE": 3}
    with pytest.raises(ValueError, match="dimension"):
        cross_table(frame, "msisdn")


def test_adhoc_count_combines_the_chosen_fields(frame):
    assert adhoc_count(frame, {"brand": "easyown", "credit_grade": "1"})["count"] == 2
    got = adhoc_count(frame, {"credit_grade": "1", "complaints_3m_at_least": "2", "brand": ""})
    assert got == {"count": 2, "share": pytest.approx(0.4), "complaints_3m": 6}
    assert adhoc_count(frame, {"customer_category": "vip_diamond"})["count"] == 0


def test_read_choices_accepts_only_the_fixed_choices():
    months, both = ["2026-05", "2026-06"], ["GD", "HE"]
    defaults, ok = read_choices(None, months, both)
    assert ok and defaults["month"] == "2026-06" and defaults["drill"] == "*"
    assert defaults["dimension"] == "province"
    chosen, ok = read_choices({"month": "2026-05", "drill": "HE", "brand": "mzone"}, months, both)
    assert ok and chosen["drill"] == "HE" and chosen["brand"] == "mzone" and chosen["month"] == "2026-05"
    for bad in (
        {"month": "2026-07"},
        {"drill": "SC"},
        {"dimension": "msisdn"},
        {"credit_grade": "6"},
        {"brand": "<script>"},
        {"complaints_3m_at_least": "0"},
    ):
        got, ok = read_choices(bad, months, both)
        assert not ok and got == defaults, bad
    # a one-province key has no national drill: its province only
    gd_defaults, _ = read_choices(None, months, ["GD"])
    assert gd_defaults["drill"] == "GD" and gd_defaults["dimension"] == "customer_category"
    assert read_choices({"drill": "*"}, months, ["GD"])[1] is False
    assert read_choices({"drill": "HE"}, months, ["GD"])[1] is False
