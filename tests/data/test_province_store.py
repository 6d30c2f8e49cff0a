"""A province file flows into the feature store: its services, its custom view, its online values."""

import shutil

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from features.provinces import EXAMPLES_DIR
from features.store import online_view, open_store
from telcoml import cli, pipeline
from telcoml.cli import app


@pytest.fixture()
def gd_world(tiny_world, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(tiny_world.settings.workdir, workdir)
    settings = Settings(workdir=workdir)
    settings.provinces_dir.mkdir()
    shutil.copy(EXAMPLES_DIR / "GD.yaml", settings.provinces_dir / "GD.yaml")
    return settings


def test_build_and_materialize_give_a_province_its_services_and_custom_view(gd_world, tiny_world):
    pipeline.indicator_stage(gd_world)
    month = pipeline.feature_store_stage(gd_world)
    store = open_store(gd_world)
    services = {s.name for s in store.list_feature_services()}
    assert {
        "credit_grade_gd_v1",
        "sensitivity_gd_v1",
        "churn_gd_v1",
        "channel_preference_gd_v1",
        "credit_grade_v1",
    } <= services
    assert not any(name.endswith("_sc_v1") for name in services)  # Sichuan has no file: the group's set
    assert "custom_gd" in {v.name for v in store.list_feature_views()}

    labels = tiny_world.labels
    gd = labels.loc[(labels["month"] == month) & (labels["province"] == "GD"), "msisdn"].iloc[:3].tolist()
    view = online_view(store, gd, "credit_grade", "GD")
    assert {"refund_to_bill_ratio", "value_added_fee_share", "number_level"} <= set(view.columns)
    assert "double_refund_count_12m" not in view.columns and "business_dependence" not in view.columns
    assert view["refund_to_bill_ratio"].notna().all()
    expected = view["refund_amount_12m"] / (3 * online_view(store, gd, "sensitivity")["arpu_3m"] + 1)
    assert view["refund_to_bill_ratio"].tolist() == pytest.approx(expected.tolist())
    assert "value_added_fee_share" in online_view(store, gd, "churn", "GD").columns


def test_an_invalid_province_file_stops_materialize_with_its_line(gd_world, monkeypatch):
    monkeypatch.setattr(cli.console, "width", 400)
    (gd_world.provinces_dir / "GD.yaml").write_text("province: GD\noptional_indicators: [influense]\n")
    result = CliRunner().invoke(app, ["materialize", "--workdir", str(gd_world.workdir)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "GD.yaml:2:" in text and "did you mean 'influence'" in text and "Traceback" not in result.output
