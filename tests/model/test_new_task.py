"""Adding a model of an existing kind is one declaration: a throwaway task, registered here and
nowhere else, is trained, served, written to the CRM file, recorded and monitored."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from core import indicators as lib
from core.kinds import Binary
from core.tasks import TASKS, Advice, Task, register, unregister

pytestmark = pytest.mark.slow

#: A second binary model on the churn contract: "will this customer go quiet", judged on churn's
#: label and oracle (a real one would get its own in features/labels.py).
DORMANCY = Task(
    "dormancy",
    lib.CHURN,
    Binary(((0.0, "low", "低"), (0.1, "high", "高"))),
    "churned_next_month",
    TASKS["churn"].label_spec,
    ("churn_probability",),
    "沉默倾向",
    "Dormancy propensity",
    guidance=(
        Advice(
            "dormancy_care",
            45,
            lambda a: a["dormancy"]["band"] == "high",
            lambda a, c: ("Likely to go quiet: offer customer care.", "可能沉默：进行客户关怀。"),
        ),
    ),
)


@pytest.fixture(scope="module")
def with_dormancy(trained_world, tmp_path_factory):
    """A copy of the trained world where the throwaway task is registered and trained."""
    from core.settings import Settings
    from training.train import train_task
    from training.tune import TuningBudget

    workdir = tmp_path_factory.mktemp("new_task") / "work"
    shutil.copytree(
        trained_world.settings.workdir,
        workdir,
        ignore=shutil.ignore_patterns("bentoml", "monitoring", "server-*.log", "crm_interface"),
    )
    settings = Settings(workdir=workdir)
    register(DORMANCY)
    try:
        result = train_task(
            settings,
            "dormancy",
            budget=TuningBudget(trials=2, max_rounds=60, seed=3, threads=1),
            train_months=3,
        )
        yield settings, result, trained_world
    finally:
        unregister("dormancy")


def test_the_new_task_is_trained_and_judged_against_its_oracle(with_dormancy):
    _, result, _ = with_dormancy
    assert result.model_name == "telcoml-dormancy" and result.promoted
    assert 0.5 < result.metrics["test_roc_auc"] <= 1 and result.metrics["oracle_ratio"] > 0.8


def test_served_written_recorded_and_monitored(with_dormancy):
    from monitoring.record import read_week
    from monitoring.weekly import monitor_week
    from serving.answers import score_frame
    from serving.batch import replay_month, score_province
    from serving.champions import load_champions
    from serving.online import OnlineFeatures

    settings, _, world = with_dormancy
    champions = load_champions(settings)
    assert champions.names["dormancy"] == "models:/telcoml-dormancy/1"
    labels = world.labels
    current = labels[(labels["month"] == world.months[-1]) & (labels["province"] == "GD")]
    msisdns = current["msisdn"].head(40).tolist()
    answers = score_frame(champions.for_province("GD"), OnlineFeatures(settings).fetch(msisdns))
    block = answers[0]["dormancy"]
    assert 0 <= block["probability"] <= 1 and block["band"] in ("low", "high") and block["reasons"]
    assert all(
        ("dormancy_care" in {g["topic"] for g in a["guidance"]}) == (a["dormancy"]["band"] == "high")
        for a in answers
    )

    crm = pd.read_parquet(score_province(settings, champions, "GD", record=False).parquet)
    assert {"dormancy_probability", "dormancy_band"} <= set(crm.columns)
    assert crm["dormancy_probability"].between(0, 1).all()

    week = replay_month(settings, world.months[-2], ["GD"])
    assert read_week(settings, week)["pred_dormancy"].notna().all()
    report = monitor_week(settings, week, tasks=["dormancy"], log_to_mlflow=False)
    assert [(d.province, d.task) for d in report.drift] == [("GD", "dormancy")]
    assert (report.report_dir / "GD" / "dormancy.html").exists()
