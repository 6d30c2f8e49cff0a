"""A province's first export: one labelled month trains every labelled model, split by customer,
judged beside the baselines and cross-validated, then refit on every labelled row."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

from core.settings import Settings
from core.tasks import TASKS
from tests.byod_data import PROVINCE_FILE, write_case

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def one_month(tiny_world, tmp_path_factory):
    from telcoml.pipeline import bring_your_own_data

    root = tmp_path_factory.mktemp("one_month")
    settings = Settings(workdir=root / "work")
    settings.provinces_dir.mkdir(parents=True)
    (settings.provinces_dir / "ZJ.yaml").write_text(PROVINCE_FILE)
    mapping = write_case(tiny_world, root / "zj")
    source = mapping.parent / "zj_customers.csv"
    table = pd.read_csv(source, dtype=str)
    month = sorted(table["TJ_YF"].unique())[0]  # a month whose churn and credit outcomes have matured
    table = table[table["TJ_YF"] == month]
    table.to_csv(source, index=False)
    run = bring_your_own_data(settings, mapping, train=True, trials=3)
    return settings, table, run


def test_one_labelled_month_trains_every_labelled_model(one_month):
    settings, table, run = one_month
    supervised = [r for r in run.training if r.method == "xgboost"]
    assert sorted(r.task for r in supervised) == ["churn", "credit_grade"]
    assert [r.task for r in run.training if r.method == "scorecard"] == ["credit_grade"]
    client = MlflowClient()
    for r in supervised:
        t = TASKS[r.task]
        assert r.split == "customer"
        params = client.get_run(r.run_id).data.params
        assert params["split"].startswith("customer") and params["months"] == run.byod.months[0]
        rows = int(params["rows_train"]) + int(params["rows_valid"]) + int(params["rows_test"])
        # the served model is refit on every labelled row: every customer of the snapshot
        assert int(params["rows_refit"]) == rows == table[table[_label_column(r.task)].notna()].shape[0]
        # a small table: 40 trials unless asked (3 here), shallower trees (2-6), a cross-validation
        assert params["small_table"] == "True" and int(params["best_max_depth"]) <= 6
        assert 0 < r.metrics[f"cv_{t.headline}_mean"] <= 1 and r.metrics["cv_folds"] >= 3
        for baseline in ("untuned_xgboost", "logistic"):
            assert f"baseline_{baseline}_{t.headline}" in r.metrics
        tags = client.get_run(r.run_id).data.tags
        assert tags["test_score_basis"] == "held-out part, measured before the refit"


def _label_column(task: str) -> str:
    return {"credit_grade": "XY_BL", "churn": "LS_BZ"}[task]
