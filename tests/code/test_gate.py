"""The champion gate on a real MLflow registry: the baseline first, then the champion."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from core.tasks import TASKS
from training.baselines import Baseline, check_against
from training.registry import gate

T = TASKS["churn"]


@pytest.fixture()
def client(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("gate")  # not the experiment an earlier test left active in another store
    c = MlflowClient()
    c.create_registered_model("telcoml-churn")
    for _ in range(3):
        c.create_model_version("telcoml-churn", source=str(tmp_path))
    return c


def _held_out(n: int = 4_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    risk = rng.random(n)
    y = (rng.random(n) < 0.05 + 0.3 * risk).astype(float)
    return y, risk, rng


def test_a_model_worse_than_a_baseline_beyond_the_noise_is_refused(client):
    y, risk, rng = _held_out()
    baseline = Baseline("logistic", risk, {}, 0.0)
    poor = np.clip(risk + rng.normal(0, 0.6, len(y)), 0, 1)  # much noisier than the baseline
    check = check_against(T, y, poor, baseline)
    assert check.below and check.gap < 0 and check.gap_high < 0
    with mlflow.start_run():
        decision = gate(client, T, "telcoml-churn", "1", 0.6, None, 0.002, baseline=check)
    assert not decision.promoted and decision.reason.startswith("below the logistic baseline")
    tags = client.get_model_version("telcoml-churn", "1").tags
    assert tags["gate.decision"] == "refused" and tags["gate.baseline"] == "logistic"
    assert str(client.get_model_version_by_alias("telcoml-churn", "challenger").version) == "1"


def test_a_gap_within_the_noise_is_not_a_refusal_and_the_champion_comes_next(client):
    y, risk, rng = _held_out()
    baseline = Baseline("logistic", risk, {}, 0.0)
    close = np.clip(risk + rng.normal(0, 0.01, len(y)), 0, 1)  # a hair different, either way
    check = check_against(T, y, close, baseline)
    assert not check.below and check.gap_high > 0
    with mlflow.start_run():
        first = gate(client, T, "telcoml-churn", "1", 0.7, None, 0.002, baseline=check)
    assert first.promoted and first.reason.startswith("first champion")
    # a second version no better than the champion on the same customers is refused
    with mlflow.start_run():
        second = gate(
            client, T, "telcoml-churn", "2", 0.7, lambda champion: (0.75, 0.7, "same rows"), 0.002, check
        )
    assert not second.promoted and second.reason.startswith("does not beat champion v1")
    assert second.basis == "same rows"
    with mlflow.start_run():
        third = gate(
            client, T, "telcoml-churn", "3", 0.8, lambda champion: (0.75, 0.8, "same rows"), 0.002, check
        )
    assert (
        third.promoted and str(client.get_model_version_by_alias("telcoml-churn", "champion").version) == "3"
    )
