"""Each province's credit model: trained from its own FeatureService, named with the province."""

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.build import offline_file
from features.provinces import load_province
from training.registry import configure_mlflow, load_task_model

# slow: trains two provinces' credit models on a copy of the trained world (~75 s); CI runs it (make test-all)
pytestmark = pytest.mark.slow


def test_each_province_trains_from_its_own_feature_service(province_world, trained_world):
    s = province_world.settings
    configure_mlflow(s, "telcoml/credit_grade/GD")
    client = MlflowClient()
    seen = {}
    for code, result in province_world.results.items():
        assert result.model_name == f"telcoml-credit_grade-{code.lower()}" and result.promoted
        run = client.get_run(result.run_id)
        assert run.data.tags["feature_service"] == f"credit_grade_{code.lower()}_v1"
        assert run.data.tags["province"] == code
        assert client.get_experiment(run.info.experiment_id).name == f"telcoml/credit_grade/{code}"
        model = load_task_model(f"models:/{result.model_name}/{result.version}")
        expected = [i.id for i in load_province(s, code).effective_indicators("credit_grade")]
        assert model.task.province == code and model.task.feature_names == expected
        assert list(model.booster.feature_names) == expected
        seen[code] = set(expected)
    assert {"number_level", "refund_to_bill_ratio", "value_added_fee_share"} <= seen["GD"] - seen["HE"]
    assert {"double_refund_count_12m", "business_dependence"} <= seen["HE"] - seen["GD"]
    # the national champion is untouched by the provinces' training
    national = client.get_model_version_by_alias("telcoml-credit_grade", "champion")
    assert str(national.version) == trained_world.results["credit_grade"].version


def test_custom_indicators_are_the_formula_over_the_snapshot(province_world):
    s, month = province_world.settings, province_world.months[-1]
    custom = pd.read_parquet(offline_file(s.offline_dir, "custom_gd", "GD", month))
    billing = pd.read_parquet(offline_file(s.offline_dir, "billing_payment", "GD", month))
    refunds = pd.read_parquet(offline_file(s.offline_dir, "complaints_service", "GD", month))
    both = custom.merge(billing, on="msisdn").merge(refunds, on="msisdn")
    expected = both["refund_amount_12m"] / (3 * both["arpu_3m"] + 1)
    np.testing.assert_allclose(both["refund_to_bill_ratio"], expected, rtol=1e-9)
    assert (both["refund_to_bill_ratio"] > 0).any()
    assert not (s.offline_dir / "custom_he").exists()  # Hebei has no custom indicators


def test_a_province_model_predicts_from_its_indicators_only(province_world):
    s = province_world.settings
    result = province_world.results["HE"]
    configure_mlflow(s, "telcoml/credit_grade/HE")  # this world's registry, whatever ran before
    model = load_task_model(f"models:/{result.model_name}/{result.version}")
    frame = pd.read_parquet(offline_file(s.offline_dir, "profile", "HE", province_world.months[-1])).head(5)
    for subject in ("billing_payment", "complaints_service", "usage"):
        frame = frame.merge(
            pd.read_parquet(offline_file(s.offline_dir, subject, "HE", province_world.months[-1])).drop(
                columns=["event_timestamp", "created_timestamp"]
            ),
            on="msisdn",
        )
    p = model.probabilities(frame.drop(columns=["number_level", "influence"]))  # not HE's: never read
    assert p.shape == (5, 5) and np.allclose(p.sum(axis=1), 1)
    with pytest.raises(KeyError):
        model.probabilities(frame.drop(columns=["double_refund_count_12m"]))
