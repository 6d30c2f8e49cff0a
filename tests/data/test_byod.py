"""Bring your own data: a province's CSV (or SQL table) with its own column names and codes."""

import os

import pandas as pd
import pytest

from core.errors import ConfigurationError, DataQualityError
from core.settings import Settings
from features.byod import run_byod
from features.store import online_view, open_store
from tests.byod_data import PROVINCE_FILE, write_case


@pytest.fixture()
def case(tiny_world, tmp_path):
    """(settings of an empty work directory with ZJ's province file, the mapping's path)."""
    settings = Settings(workdir=tmp_path / "work")
    settings.provinces_dir.mkdir(parents=True)
    (settings.provinces_dir / "ZJ.yaml").write_text(PROVINCE_FILE)
    return settings, write_case(tiny_world, tmp_path / "zj")


def test_a_province_csv_becomes_its_feature_store_and_labels(case):
    settings, mapping = case
    source = pd.read_csv(mapping.parent / "zj_customers.csv", dtype=str)
    result = run_byod(settings, mapping)
    assert result.province == "ZJ" and result.rows == len(source) and result.report.passed
    assert result.models_labelled == ["credit_grade", "churn"]
    assert not (settings.truth_dir).exists()  # nothing synthetic: no generator truth in this work directory
    for subject in (
        "profile",
        "billing_payment",
        "complaints_service",
        "usage",
        "channel_contacts",
        "custom_zj",
    ):
        assert len(list((settings.offline_dir / subject).glob("ZJ_*.parquet"))) == len(result.months)
    labels = pd.read_parquet(settings.labels_dir / "ZJ.parquet")
    assert set(labels["credit_grade"].dropna()) <= {1, 2, 3, 4, 5} and set(labels["churned_next_month"]) <= {
        0,
        1,
    }

    latest = source[source["TJ_YF"] == result.months[-1].replace("-", "")].iloc[0]
    view = online_view(open_store(settings), [latest["SHOUJI_HAO"]], "credit_grade", "ZJ").iloc[0]
    assert (
        view["customer_category"]
        == {
            "个人": "individual",
            "集团": "group_member",
            "银卡": "vip_silver",
            "金卡": "vip_gold",
            "钻卡": "vip_diamond",
        }[latest["KH_LB"]]
    )
    assert view["tenure_months"] == int(latest["ZW_SC"])
    assert view["local_value_score"] == pytest.approx(float(latest["ZDY_PF"]))
    assert "number_level" not in view.index  # ZJ chose no optional indicators


def test_bad_rows_are_refused_by_file_column_and_row_and_nothing_is_written(case):
    settings, mapping = case
    path = mapping.parent / "zj_customers.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.loc[3, "SHOUJI_HAO"] = "1381234"
    frame.loc[5, "KH_LB"] = "白金卡"
    frame.loc[7, "ZW_SC"] = "-4"
    frame.loc[8, "TJ_YF"] = "last month"
    frame.to_csv(path, index=False)
    with pytest.raises(DataQualityError) as err:
        run_byod(settings, mapping)
    text = str(err.value)
    assert f"{path}: column SHOUJI_HAO rows [3]" in text and "not of 11 digits" in text
    assert "column KH_LB (-> customer_category) rows [5]" in text and "'白金卡' not among the codes" in text
    assert "column ZW_SC (-> tenure_months) rows [7]" in text and "outside valid range [0, 600]" in text
    assert "column TJ_YF rows [8]" in text
    assert not settings.offline_dir.exists() and not settings.labels_dir.exists()


def test_a_missing_column_and_mapping_mistakes_name_the_file_and_line(case):
    settings, mapping = case
    text = mapping.read_text()
    mapping.write_text(text.replace("XF_JE: monthly_consumption", "XIAOFEI: monthly_consumption"))
    with pytest.raises(
        DataQualityError, match=r"column XIAOFEI: column\(s\) named in the mapping are not in the data"
    ):
        run_byod(settings, mapping)
    mapping.write_text(text.replace("XF_JE: monthly_consumption", "XF_JE: monthly_consumptoin"))
    with pytest.raises(
        ConfigurationError, match=r"mapping.yaml:\d+: columns: .*unknown indicator 'monthly_consumptoin'"
    ):
        run_byod(settings, mapping)
    lines = text.splitlines()
    mapping.write_text("\n".join(line for line in lines if "complaint_satisfaction" not in line))
    with pytest.raises(ConfigurationError) as err:
        run_byod(settings, mapping)
    label_line = next(i for i, line in enumerate(lines, 1) if "XY_DJ" in line) - 1
    assert f"mapping.yaml:{label_line}: labels for credit_grade given, but" in str(err.value)
    assert "complaint_satisfaction" in str(err.value)


def _sql_case(case, url: str, write) -> Settings:
    settings, mapping = case
    frame = pd.read_csv(mapping.parent / "zj_customers.csv", dtype=str)
    write(frame)
    text = mapping.read_text().replace(
        "  path: zj_customers.csv", f"  sql:\n    url: {url}\n    query: select * from zj_kehu"
    )
    mapping.write_text(text)
    result = run_byod(settings, mapping)
    assert result.rows == len(frame) and result.models_labelled == ["credit_grade", "churn"]
    assert result.report.files[0].startswith("sql ")
    return settings


def test_a_sql_source_sqlite(case, tmp_path):
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    _sql_case(case, url, lambda frame: frame.to_sql("zj_kehu", create_engine(url), index=False))


@pytest.mark.postgres
def test_a_sql_source_postgres(case):
    from sqlalchemy import create_engine, text

    url = os.environ.get("TELCOML_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    engine = create_engine(url)

    def write(frame):
        with engine.begin() as connection:
            connection.execute(text("drop table if exists zj_kehu"))
        frame.to_sql("zj_kehu", engine, index=False)

    _sql_case(case, url, write)
