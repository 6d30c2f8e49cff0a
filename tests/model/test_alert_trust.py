"""Weekly alerts people can trust, on steady worlds of 5,000 and 20,000 customers.

Four provinces of different mixes (Hebei: more prepaid Easyown; Zhejiang and Hebei small).
The champions are tested on 2026-04. Replayed into the weeks they went live: 2026-04 (the
reference month itself), 2026-05 (a quiet month) and 2026-06, when the market changes in
Sichuan only. Each province is judged against its own customers and at its own size.
"""

from __future__ import annotations

import numpy as np
import pytest

from features.generate import GeneratorConfig
from tests.conftest import build_world

pytestmark = pytest.mark.slow

TEST_MONTH, QUIET_MONTH, DRIFT_MONTH = "2026-04", "2026-05", "2026-06"
PROVINCES = ("GD", "SC", "HE", "ZJ")
#: The tasks whose indicators the tariff change moves (bills, billing inquiries).
MOVED_TASKS = {"tariff_sensitivity", "complaint_sensitivity", "churn"}


def _world_config(customers: int) -> GeneratorConfig:
    return GeneratorConfig(
        customers=customers,
        months=6,
        start_month="2026-01",
        provinces=PROVINCES,
        seed=13,
        drift_month=DRIFT_MONTH,
        drift_provinces=("SC",),
    )


@pytest.fixture(scope="module", params=[5_000, 20_000], ids=["5k", "20k"])
def weeks(request, tmp_path_factory):
    from core.tasks import TASKS
    from monitoring.weekly import monitor_week
    from serving.batch import replay_month
    from training.train import train_task
    from training.tune import TuningBudget

    world = build_world(tmp_path_factory.mktemp(f"alerts{request.param}"), _world_config(request.param))
    budget = TuningBudget(trials=2, max_rounds=150, seed=3, threads=2)
    for name in TASKS:
        train_task(world.settings, name, budget=budget, train_months=2, test_month=TEST_MONTH)
    out = {"world": world}
    for kind, month in (("reference", TEST_MONTH), ("quiet", QUIET_MONTH), ("drift", DRIFT_MONTH)):
        week = replay_month(world.settings, month)
        out[kind] = monitor_week(world.settings, week, log_to_mlflow=False)
    return out


def _explain(result) -> str:
    return result.table().to_string() + "\n" + "\n".join(str(a["breaches"]) for a in result.alerts)


def test_replaying_the_reference_month_raises_no_alert(weeks):
    result = weeks["reference"]
    assert result.alerts == [], _explain(result)
    assert {d.province for d in result.drift} == set(PROVINCES)
    for d in result.drift:
        assert d.drifted_features == 0, (d.province, d.task, d.moved)


def test_a_quiet_week_raises_no_alert_and_a_province_is_not_flagged_for_its_mix(weeks):
    result = weeks["quiet"]
    assert result.alerts == [], _explain(result)
    # Hebei's customers differ from the national mix by design (more prepaid Easyown): judged
    # against its own customers it is not drifted, however small it is
    hebei = [d for d in result.drift if d.province == "HE"]
    assert len(hebei) == 5
    assert all(d.drifted_feature_share < 0.3 for d in hebei), [(d.task, d.moved) for d in hebei]
    assert all(d.rows_reference >= min(d.rows_current, 1000) for d in hebei)  # topped up from its own months


def test_the_market_change_in_one_province_alerts_that_province_only(weeks):
    result = weeks["drift"]
    alerted = {(a["province"], a["task"]) for a in result.alerts}
    assert {p for p, _ in alerted} == {"SC"}, _explain(result)
    assert ("SC", "tariff_sensitivity") in alerted, _explain(result)
    tariff = next(a for a in result.alerts if a["province"] == "SC" and a["task"] == "tariff_sensitivity")
    named = {m["indicator"] for m in tariff["moved_indicators"]}
    assert named & {"billing_inquiry_count_3m", "bill_change_ratio", "monthly_consumption", "arpu_3m"}
    for breach in tariff["breaches"]:  # how sure, on how many customers
        assert breach["customers"] > 0 and breach["confidence"] == "95%" and breach["evidence"]
    assert all(m["p_value"] is not None and m["p_value"] < 0.05 for m in tariff["moved_indicators"])


def test_an_injected_quality_drop_is_caught_and_a_same_size_fluctuation_is_not(weeks):
    from mlflow import MlflowClient

    from core.tasks import TASKS
    from monitoring.drift import TaskDrift, Thresholds, breaches
    from monitoring.model_quality import quality_change
    from monitoring.reference import load_reference
    from training.registry import champion_version, configure_mlflow, load_task_model

    world = weeks["world"]
    t = TASKS["tariff_sensitivity"]
    configure_mlflow(world.settings, t.experiment_name())
    version = champion_version(MlflowClient(), t.model_name()).version
    reference = load_reference(world.settings, t.model_name(), str(version))
    held_out = reference[(reference["reference_part"] == "test") & (reference["province"] == "GD")]
    model = load_task_model(f"models:/{t.model_name()}/{version}")
    y = t.kind.encode_label(held_out["target"].reset_index(drop=True))
    p = model.probabilities(held_out)
    half = len(y) // 2
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    a, b = order[:half], order[half:]

    def verdict(y_current):
        change = quality_change(t, y[a], p[a], y_current, p[b])
        summary = TaskDrift(
            t.name, "GD", "W", t.model_name(), "1", len(b), len(a), 0, 1, 0.0, 0.0,
            labels_matured=len(b), quality_metric=t.headline, quality_current=change.current,
            quality_champion=change.reference, quality_reference_rows=len(a), quality_drop=change.drop,
            quality_drop_low=change.low, quality_drop_high=change.high,
        )  # fmt: skip
        return change, [x["check"] for x in breaches(summary, Thresholds())]

    # the same customers' kind, the same size: whatever the two halves' scores, no alert
    fluctuation, found = verdict(y[b])
    assert found == [], fluctuation
    assert fluctuation.low < 0 < fluctuation.high or abs(fluctuation.drop) < 0.05
    # a third of the week's labels scrambled (a model that stopped describing these customers)
    scrambled = y[b].copy()
    hit = rng.random(len(scrambled)) < 0.35
    scrambled[hit] = rng.permutation(scrambled[hit])
    injected, found = verdict(scrambled)
    assert found == ["quality_drop"], injected
    assert injected.low > 0 and injected.drop >= 0.05
