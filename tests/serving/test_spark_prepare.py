"""Prepared answers as a Spark job (local mode) against the embedded prepare, SQLite and Redis."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from core.settings import Settings
from features.repo import ANSWERS_VIEW
from features.store import apply_repository, materialize_latest, open_store
from serving.champions import load_champions
from serving.prepared import FIELDS, PreparedAnswers, prepare_answers, snapshot_customers, unpack
from serving.spark_prepare import prepare_answers_spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _copy(trained_world, tmp_path, **settings) -> Settings:
    workdir = tmp_path / "work"
    shutil.copytree(
        trained_world.settings.workdir,
        workdir,
        ignore=shutil.ignore_patterns("bentoml", "monitoring", "server-*.log", "crm_interface", "serving"),
    )
    return Settings(workdir=workdir, **settings)


def _stored(settings: Settings, msisdns: list[str]) -> dict[str, dict]:
    """Every customer's stored answer (without its preparation time), indicators and generation."""
    store = open_store(settings)
    columns = store.get_online_features(
        features=[f"{ANSWERS_VIEW}:{f}" for f in FIELDS], entity_rows=[{"msisdn": m} for m in msisdns]
    ).to_dict()
    out = {}
    for m, province, stamp, answer, indicators in zip(msisdns, *(columns[f] for f in FIELDS)):
        assert answer is not None, "a customer without a prepared answer"
        body = unpack(answer)
        assert body.pop("prepared_at")
        out[m] = {"province": province, "generation": stamp, "answer": body, "indicators": unpack(indicators)}
    return out


def _prepared_by_both(settings: Settings, spark, province: str) -> None:
    models = load_champions(settings)
    numbers = snapshot_customers(settings)[province]
    embedded = prepare_answers(settings, models, [province])
    expected = _stored(settings, numbers)
    result = prepare_answers_spark(spark, settings, models, [province.lower()], chunk_size=500)
    assert result.provinces == embedded.provinces == {province: len(numbers)}
    got = _stored(settings, numbers)

    assert got.keys() == expected.keys()
    for m in numbers:
        # answers and indicators as JSON text: a NaN, a type (1 vs 1.0) or a category worded apart differs
        assert json.dumps(got[m], sort_keys=True) == json.dumps(expected[m], sort_keys=True), m
    some = expected[numbers[0]]["indicators"]
    # missing values seen (null in the packed indicators, as the online store gives them)
    assert any(v is None for r in expected.values() for v in r["indicators"].values())
    assert {type(v) for v in some.values()} >= {int, float, str}

    # the service's lookup serves them as prepared: the generation it deems current
    service = PreparedAnswers(settings)
    current = service.current(models.for_province(province), province)
    looked_up = service.lookup(numbers[:50])
    assert all(p is not None and p.generation == current for p in looked_up)


def test_spark_prepared_answers_equal_the_embedded_ones(trained_world, spark, tmp_path):
    settings = _copy(trained_world, tmp_path)
    _prepared_by_both(settings, spark, "HE")  # the smaller province: every one of its customers


def test_spark_prepare_refuses_a_snapshot_not_materialized(trained_world, spark, tmp_path):
    from core.errors import NotReadyError

    settings = _copy(trained_world, tmp_path)
    shutil.rmtree(settings.feature_repo_dir)  # a fresh repository, loaded with the month before the latest
    materialize_latest(apply_repository(settings), trained_world.months[-2])
    with pytest.raises(NotReadyError, match="run `telcoml materialize` first"):
        prepare_answers_spark(spark, settings, load_champions(settings), ["HE"])
    assert not (settings.workdir / "serving" / "prepare").exists()  # nothing recorded as prepared


@pytest.mark.redis
def test_spark_prepared_answers_equal_the_embedded_ones_redis(trained_world, spark, redis_url, tmp_path):
    # its own Feast project: its keys in the shared Redis are nobody else's (teardown removes them)
    settings = _copy(
        trained_world, tmp_path, online_store="redis", redis_url=redis_url, project=f"t{uuid.uuid4().hex[:8]}"
    )
    store = apply_repository(settings)
    materialize_latest(store, trained_world.months[-1])
    try:
        _prepared_by_both(settings, spark, "HE")
    finally:
        store.teardown()
