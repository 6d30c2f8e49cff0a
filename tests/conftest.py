"""Shared fixtures: one tiny synthetic world, generated, built and loaded once per session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from core.settings import Settings
from features.build import available_months, available_provinces, build_indicators
from features.generate import GeneratorConfig, generate
from features.store import apply_repository, materialize_latest

# no background prepares after materialize, train or /reload (servers started by tests inherit it);
# tests of the background prepare turn it on for themselves
os.environ.setdefault("TELCOML_AUTO_PREPARE", "0")

TINY = GeneratorConfig(
    customers=800, months=4, start_month="2026-01", provinces=("GD", "SC"), seed=11, drift_month="2026-04"
)


@dataclass
class World:
    settings: Settings
    config: GeneratorConfig
    months: list[str]
    labels: pd.DataFrame
    results: dict | None = None

    def store(self):
        from features.store import open_store

        return open_store(self.settings)


def build_world(workdir: Path, config: GeneratorConfig = TINY, **settings) -> World:
    s = Settings(workdir=workdir, **settings)
    generate(config, s.raw_dir, s.truth_dir)
    months = available_months(s.raw_dir, config.provinces[0])
    build_indicators(s.raw_dir, s.offline_dir, available_provinces(s.raw_dir), months)
    store = apply_repository(s)
    materialize_latest(store, months[-1])
    labels = pd.concat(
        [pd.read_parquet(p) for p in sorted((s.truth_dir / "labels").glob("*.parquet"))], ignore_index=True
    )
    return World(s, config, months, labels)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> World:
    """800 customers, 4 months, two provinces; SQLite online store."""
    return build_world(tmp_path_factory.mktemp("tiny"))


MODEL_WORLD = GeneratorConfig(
    customers=3000, months=6, start_month="2026-01", provinces=("GD", "HE"), seed=5, drift_month=None
)


@pytest.fixture(scope="session")
def trained_world(tmp_path_factory) -> World:
    """3,000 customers over 6 months in two provinces; every task tuned with 3 trials."""
    from core.tasks import TASKS
    from training.train import train_task
    from training.tune import TuningBudget

    world = build_world(tmp_path_factory.mktemp("models"), MODEL_WORLD)
    budget = TuningBudget(trials=3, max_rounds=200, seed=3, threads=1)
    world.results = {name: train_task(world.settings, name, budget=budget, train_months=3) for name in TASKS}
    return world


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test (starting one costs tens of seconds)."""
    from core.spark import spark_session

    session = spark_session(Settings(spark_master="local[2]", spark_driver_memory="1g"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TELCOML_REDIS_URL", "127.0.0.1:6379")
    import redis

    host, port = url.split(",")[0].split(":")
    try:
        redis.Redis(host=host, port=int(port), socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as err:  # a missing service is a failure in CI, not a skip
        pytest.fail(f"Redis is not reachable at {url}: {err}")
    return url


@pytest.fixture(scope="session")
def province_world(trained_world, tmp_path_factory) -> World:
    """A copy of the trained world with Guangdong's and Hebei's example province files: their
    custom indicators built, their feature services applied, and each province's own credit
    grade model trained (other tasks stay national)."""
    import shutil

    from features.custom import build_custom_indicators
    from features.provinces import EXAMPLES_DIR, load_provinces
    from training.train import train_task
    from training.tune import TuningBudget

    workdir = tmp_path_factory.mktemp("provinces") / "work"
    shutil.copytree(trained_world.settings.workdir, workdir)
    s = Settings(workdir=workdir)
    s.provinces_dir.mkdir(parents=True, exist_ok=True)
    for code in ("GD", "HE"):
        shutil.copy(EXAMPLES_DIR / f"{code}.yaml", s.provinces_dir / f"{code}.yaml")
    for config in load_provinces(s):
        build_custom_indicators(config, s.raw_dir, s.offline_dir, trained_world.months)
    materialize_latest(apply_repository(s), trained_world.months[-1])
    budget = TuningBudget(trials=3, max_rounds=200, seed=3, threads=1)
    results = {
        code: train_task(s, "credit_grade", code, budget=budget, train_months=3) for code in ("GD", "HE")
    }
    return World(s, trained_world.config, trained_world.months, trained_world.labels, results)


# -- a real BentoML server on the trained world, started once per session (serving and abuse tests)
@pytest.fixture(scope="session")
def keys(trained_world) -> dict[str, str]:
    from serving.security import create_key

    s = trained_world.settings
    return {
        "group": create_key(s, "crm-group"),
        "GD": create_key(s, "crm-gd", "GD"),
        "HE": create_key(s, "crm-he", "HE"),
    }


@pytest.fixture(scope="session")
def server(trained_world, keys):
    from tests.servers import Server

    srv = Server(trained_world.settings.workdir, env={"TELCOML_RECORD_FLUSH_SECONDS": "1"})
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def customers(trained_world) -> dict[str, str]:
    """A current customer of each province."""
    latest = trained_world.months[-1]
    labels = trained_world.labels[trained_world.labels["month"] == latest]
    return {p: labels.loc[labels["province"] == p, "msisdn"].iloc[0] for p in ("GD", "HE")}
