"""Bring your own data: a province's CSV (or SQL table) with its own column names and codes."""

import os

import pandas as pd
import pytest

from core import indicators as lib
from core.errors import ConfigurationError, DataQualityError
from core.settings import Settings
from core.tasks import TASKS
from features.byod import read_mapping, run_byod
from features.provinces import load_province
from features.store import online_view, open_store
from tests.byod_data import PROVINCE_FILE, SEGMENT_ZH, write_case


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
    assert set(labels["credit_bad_event"].dropna()) <= {0, 1} and set(labels["churned_next_month"]) <= {
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
    # a category of the province's own data, recoded by the mapping into the province file's codes
    assert view["local_segment"] == {zh: code for code, zh in SEGMENT_ZH.items()}[latest["ZDY_FQ"]]
    custom = pd.read_parquet(settings.offline_dir / "custom_zj" / f"ZJ_{result.months[-1]}.parquet")
    assert set(custom["local_segment"]) == set(SEGMENT_ZH)
    assert "number_level" not in view.index  # ZJ chose no optional indicators


def test_bad_rows_are_refused_by_file_column_and_row_and_nothing_is_written(case):
    settings, mapping = case
    path = mapping.parent / "zj_customers.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.loc[3, "SHOUJI_HAO"] = "1381234"
    frame.loc[5, "KH_LB"] = "白金卡"
    frame.loc[7, "ZW_SC"] = "-4"
    frame.loc[8, "TJ_YF"] = "last month"
    frame.loc[4, "ZDY_FQ"] = "学生"  # not a code of the province's own category indicator
    frame.to_csv(path, index=False)
    with pytest.raises(DataQualityError) as err:
        run_byod(settings, mapping)
    text = str(err.value)
    assert f"{path}: column SHOUJI_HAO rows [3]" in text and "not of 11 digits" in text
    assert "column KH_LB (-> customer_category) rows [5]" in text and "'白金卡' not among the codes" in text
    assert "column ZW_SC (-> tenure_months) rows [7]" in text and "outside valid range [0, 600]" in text
    assert "column TJ_YF rows [8]" in text
    assert "column ZDY_FQ (-> local_segment) rows [4]" in text and "'学生' not among the codes" in text
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


def test_a_model_lacking_indicators_is_not_trained_but_its_labels_are_stored(case):
    settings, mapping = case
    lines = mapping.read_text().splitlines()
    mapping.write_text("\n".join(line for line in lines if "complaint_satisfaction" not in line))
    result = run_byod(settings, mapping)
    assert result.models_labelled == ["credit_grade", "churn"] and result.models_trainable == []
    assert result.models_untrainable == {
        "credit_grade": ["complaint_satisfaction"],
        "churn": ["complaint_satisfaction"],
    }
    warnings = [str(p) for p in result.report.warnings]
    assert any(
        w.startswith(f"{mapping}: column XY_BL (-> credit_bad_event)")
        and "labels for credit_grade stored, but the model is not trained: its indicators are not all "
        "mapped: complaint_satisfaction"
        in w
        and "models: credit_grade: drop_indicators" in w
        for w in warnings
    ), warnings
    labels = pd.read_parquet(settings.labels_dir / "ZJ.parquet")
    assert labels["credit_bad_event"].notna().any() and labels["churned_next_month"].notna().any()


#: A province whose churn model does without the credit grade's nine mandatory indicators.
CHURN_ONLY = """\
province: ZJ
models:
  churn:
    drop_indicators: [{churn_credit}]
"""
#: The same, said once for every model: the province then has no credit grade.
NO_CREDIT = """\
province: ZJ
drop_indicators: [{mandatory}]
"""


def _churn_only_case(case, province_file: str):
    """The case's mapping without any of the nine mandatory credit indicators mapped."""
    settings, mapping = case
    mandatory = [i.id for i in lib.credit_indicators("mandatory")]
    churn_credit = [i.id for i in lib.for_task("churn") if i.id in mandatory]
    (settings.provinces_dir / "ZJ.yaml").write_text(
        province_file.format(churn_credit=", ".join(churn_credit), mandatory=", ".join(mandatory))
    )
    lines = mapping.read_text().splitlines()
    mapping.write_text(
        "\n".join(line for line in lines if not any(line.endswith(f": {m}") for m in mandatory)) + "\n"
    )
    return settings, mapping, mandatory


@pytest.mark.parametrize("province_file", [CHURN_ONLY, NO_CREDIT], ids=["churn section", "every model"])
def test_churn_trains_without_any_credit_indicator_mapped(case, province_file):
    settings, mapping, mandatory = _churn_only_case(case, province_file)
    assert not set(mandatory) & set(read_mapping(mapping, settings)[0].columns.values())
    result = run_byod(settings, mapping)
    assert result.models_labelled == ["credit_grade", "churn"] and result.models_trainable == ["churn"]
    assert set(result.models_untrainable) == {"credit_grade"}
    assert set(result.models_untrainable["credit_grade"]) == set(mandatory)
    config = load_province(settings, "ZJ")
    churn = [i.id for i in TASKS["churn"].tailored(config).indicators]
    assert churn and not set(churn) & set(mandatory)
    warning = " ".join(str(p) for p in result.report.warnings)
    if province_file is NO_CREDIT:
        assert "the province file drops customer_category, brand" in warning
        assert "so the province has no credit_grade model" in warning
    else:
        assert "labels for credit_grade stored, but the model is not trained" in warning


@pytest.mark.slow
def test_churn_only_data_trains_churn_and_skips_the_credit_grade(case):
    from telcoml.pipeline import bring_your_own_data

    settings, mapping, mandatory = _churn_only_case(case, CHURN_ONLY)
    run = bring_your_own_data(settings, mapping, train=True, trials=1)
    assert [r.task for r in run.training] == ["churn"]
    assert run.byod.models_untrainable["credit_grade"]


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
