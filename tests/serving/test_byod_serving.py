"""Bring your own data end to end: a CSV with its own column names -> gate -> store -> train -> serve."""

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.settings import Settings
from serving.security import create_key
from telcoml import cli
from telcoml.cli import app
from tests.byod_data import PROVINCE_FILE, write_case
from tests.servers import Server


@pytest.fixture(scope="module")
def byod_world(tiny_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("byod")
    settings = Settings(workdir=root / "work")
    settings.provinces_dir.mkdir(parents=True)
    (settings.provinces_dir / "ZJ.yaml").write_text(PROVINCE_FILE)
    mapping = write_case(tiny_world, root / "zj")
    return settings, mapping


def test_a_province_csv_trains_and_serves_without_synthetic_data(byod_world, monkeypatch):
    settings, mapping = byod_world
    monkeypatch.setattr(cli.console, "width", 240)
    result = CliRunner().invoke(
        app, ["byod", str(mapping), "--train", "--trials", "2", "--workdir", str(settings.workdir)]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "passed the gate" in text and "labels for: credit_grade, churn" in text
    assert "credit_grade (ZJ)" in text and "churn (ZJ)" in text and "tariff_sensitivity" not in text
    assert not settings.truth_dir.exists()

    key = create_key(settings, "crm-zj", "ZJ")
    server = Server(settings.workdir)
    try:
        source = pd.read_csv(mapping.parent / "zj_customers.csv", dtype=str)
        msisdn = source.loc[source["TJ_YF"] == source["TJ_YF"].max(), "SHOUJI_HAO"].iloc[0]
        r = httpx.post(f"{server.url}/score", json={"msisdn": msisdn}, headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["province"] == "ZJ"
        assert body["models"] == {
            "credit_grade": "models:/telcoml-credit_grade-zj/1",
            "churn": "models:/telcoml-churn-zj/1",
        }
        assert body["credit_grade"]["code"] in range(1, 6) and 0 <= body["churn"]["probability"] <= 1
        assert "tariff_sensitivity" not in body and "channel_preference" not in body
        assert any(g["topic"] == "complaint_handling" for g in body["guidance"])
    finally:
        server.stop()
