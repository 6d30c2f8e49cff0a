"""A small world with every task trained, shared by the model tests."""

from __future__ import annotations

import pytest

from features.generate import GeneratorConfig
from training.train import train_task
from training.tasks import TASKS
from training.tune import TuningBudget

MODEL_WORLD = GeneratorConfig(customers=3000, months=6, start_month="2026-01", provinces=("GD", "HE"),
                              seed=5, drift_month=None)
BUDGET = TuningBudget(trials=3, max_rounds=200, seed=3)


@pytest.fixture(scope="session")
def trained_world(tmp_path_factory):
    """3,000 customers over 6 months; every task tuned with 3 trials."""
    from tests.conftest import build_world

    world = build_world(tmp_path_factory.mktemp("models"), MODEL_WORLD)
    world.results = {name: train_task(world.settings, name, budget=BUDGET, train_months=3) for name in TASKS}
    return world
