"""The managers' overview as pure functions, on hand-made frames."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from serving.console.overview import (
    adhoc_count,
    city_names,
    comparison_figure,
    cross_table,
    export_rows,
    grade_overview,
    in_drill,
    read_choices,
    rows_csv,
    subscriber_cities,
    trend,
    trend_figure,
)


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
            "churn_band": ["high", "low", "medium", "low", "high"],
            "city": ["GD/Guangzhou", "GD/unknown", "HE/Shijiazhuang", "HE/Baoding", "HE/Shijiazhuang"],
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


def test_churn_bands_beside_the_grades_and_by_city(frame):
    view = grade_overview(frame, "en")
    assert [(b["code"], b["count"]) for b in view["bands"]] == [("low", 2), ("medium", 1), ("high", 2)]
    assert view["bands"][2]["share"] == pytest.approx(0.4)
    bands = cross_table(frame, "brand", "zh", "churn_band")
    assert [c["label"] for c in bands["columns"]] == ["低", "中", "高"]
    assert {r["value"]: r["counts"] for r in bands["rows"]} == {
        "gotone": [1, 0, 1],
        "easyown": [0, 1, 1],
        "mzone": [1, 0, 0],
    }
    national = cross_table(frame, "city", "en")
    assert [(r["label"], r["total"]) for r in national["rows"]] == [
        ("GD · Guangzhou", 1),
        ("GD · unknown", 1),
        ("HE · Baoding", 1),
        ("HE · Shijiazhuang", 2),
    ]
    hebei = cross_table(in_drill(frame, "HE"), "city", "zh")
    assert [(r["label"], r["counts"]) for r in hebei["rows"]] == [
        ("Baoding", [0, 0, 1, 0, 0]),
        ("Shijiazhuang", [2, 0, 0, 0, 0]),
    ]
    with pytest.raises(ValueError, match="measure"):
        cross_table(frame, "brand", "zh", "msisdn")


def test_drill_national_province_city(frame):
    assert len(in_drill(frame, "*")) == 5
    assert in_drill(frame, "GD")["credit_grade"].tolist() == [1, 5]
    assert in_drill(frame, "HE/Shijiazhuang")["complaint_count_3m"].tolist() == [4, 0]
    assert in_drill(frame, "GD/unknown")["credit_grade"].tolist() == [5]
    assert in_drill(frame, "HE/Guangzhou").empty
    months, both = ["2026-06"], ["GD", "HE"]
    cities = {"GD": ["Guangzhou", "unknown"], "HE": ["Baoding", "Shijiazhuang"]}
    chosen, ok = read_choices(
        {"drill": "HE/Baoding", "dimension": "city", "churn_band": "high"}, months, both, cities
    )
    assert ok and chosen["drill"] == "HE/Baoding" and chosen["churn_band"] == "high"
    for bad in (
        {"drill": "HE/Guangzhou"},
        {"drill": "GD/Atlantis"},
        {"drill": "GD/"},
        {"churn_band": "huge"},
    ):
        assert read_choices(bad, months, both, cities)[1] is False, bad
    # a GD key: its own cities only
    assert read_choices({"drill": "GD/Guangzhou"}, months, ["GD"], {"GD": cities["GD"]})[1] is True
    assert read_choices({"drill": "HE/Baoding"}, months, ["GD"], {"GD": cities["GD"]})[1] is False


def test_trend_counts_and_shares_each_month(frame):
    view = trend({"2026-06": frame, "2026-05": frame.iloc[:2]}, "en")
    assert [r["month"] for r in view["rows"]] == ["2026-05", "2026-06"]
    assert [r["customers"] for r in view["rows"]] == [2, 5]
    assert [g["count"] for g in view["rows"][0]["credit_grade"]] == [1, 0, 0, 0, 1]
    assert view["rows"][1]["churn_band"][0] == {"code": "low", "label": "low", "count": 2, "share": 0.4}
    figure = json.loads(trend_figure(view, "credit_grade", "en"))
    assert [t["type"] for t in figure["data"]] == ["scatter"] * 5
    assert figure["data"][0]["y"] == [0.5, 0.6] and figure["data"][0]["customdata"] == [1, 3]
    assert figure["data"][0]["name"] == "1 extremely poor"


def test_region_comparison_is_a_grouped_bar_chart(frame):
    figure = json.loads(comparison_figure(cross_table(frame, "province", "en"), "en"))
    assert figure["layout"]["barmode"] == "group"
    assert [t["type"] for t in figure["data"]] == ["bar"] * 5
    assert figure["data"][0]["x"] == ["GD", "HE"]
    assert figure["data"][0]["y"] == pytest.approx([0.5, 2 / 3]) and figure["data"][0]["customdata"] == [1, 2]
    assert "</" not in comparison_figure(cross_table(frame, "province", "en"), "en")


def test_export_rows_are_the_table_with_bands_and_the_adhoc_match(frame):
    rows = export_rows(in_drill(frame, "HE"), "brand", {"credit_grade": "1", "brand": ""}, "en")
    assert [r["brand"] for r in rows] == ["mzone", "easyown", "total"]
    easyown = rows[1]
    assert easyown["credit_grade_1"] == 2 and easyown["customers"] == 2 and easyown["matching"] == 2
    assert (easyown["churn_band_medium"], easyown["churn_band_high"]) == (1, 1)
    assert rows[-1] == {
        "brand": "total",
        "label": "Total",
        "credit_grade_1": 2,
        "credit_grade_2": 0,
        "credit_grade_3": 1,
        "credit_grade_4": 0,
        "credit_grade_5": 0,
        "churn_band_low": 1,
        "churn_band_medium": 1,
        "churn_band_high": 1,
        "customers": 3,
        "matching": 2,
    }
    assert "matching" not in export_rows(frame, "province", {"brand": ""})[0]
    text = rows_csv([{"city": "=cmd()", "n": 1}])
    assert text.splitlines() == ["city,n", "'=cmd(),1"]


def test_cities_from_the_subscriber_master(tmp_path):
    path = tmp_path / "subscribers" / "province=GD" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame(
        {
            "msisdn": ["1", "2", "3", "4"],
            "city": ["Shenzhen", None, " ", "Guangzhou"],
            "brand": ["gotone"] * 4,
        }
    ).to_parquet(path)
    cities = subscriber_cities(tmp_path, "GD")
    assert cities.to_dict() == {"1": "GD/Shenzhen", "2": "GD/unknown", "3": "GD/unknown", "4": "GD/Guangzhou"}
    assert city_names(tmp_path, "GD") == ["Guangzhou", "Shenzhen", "unknown"]
    assert subscriber_cities(tmp_path, "HE").empty and city_names(tmp_path, "HE") == []


def test_categorical_frames_concatenated_count_the_same(frame):
    from serving.console.overview import CATEGORICAL, concat_graded

    categorical = frame.astype({c: "category" for c in CATEGORICAL})
    both = concat_graded([in_drill(categorical, "GD"), in_drill(categorical, "HE")])
    assert isinstance(both["city"].dtype, pd.CategoricalDtype) and len(both) == 5
    for dimension in ("province", "city", "brand"):
        for measure in ("credit_grade", "churn_band"):
            assert cross_table(both, dimension, "en", measure) == cross_table(frame, dimension, "en", measure)
    # a province's region drilled to itself is the same frame, a city is its rows only
    gd = in_drill(categorical, "GD")
    assert in_drill(gd, "GD") is gd and in_drill(gd, "GD/unknown")["credit_grade"].tolist() == [5]
    assert (
        cross_table(frame.iloc[:0], "brand")["rows"] == []
        and cross_table(frame.iloc[:0], "brand")["total"] == 0
    )
