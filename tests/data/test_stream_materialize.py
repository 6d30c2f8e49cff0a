"""Streaming materialization against Feast's own: the same online answers and registry record."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import indicators as lib
from core.settings import Settings
from features.store import apply_repository, materialize_latest
from features.stream_materialize import materialize_stream

REFS = [f"{i.subject}:{i.id}" for i in lib.CATALOGUE]


def _settings(world, tmp_path: Path, name: str, **more) -> Settings:
    """A work directory of its own (its own registry and online store, its own Feast project in a
    shared Redis) over the world's offline files."""
    workdir = tmp_path / name
    workdir.mkdir()
    (workdir / "offline").symlink_to(world.settings.offline_dir)
    if more.get("online_store") == "redis":
        more["project"] = f"t{uuid.uuid4().hex[:8]}"
    return Settings(workdir=workdir, **more)


def _customers(world) -> list[str]:
    """Every customer of every snapshot file (the latest month's and the ones before)."""
    files = sorted(world.settings.offline_dir.glob("profile/*.parquet"))
    return sorted(
        {m for f in files for m in pq.read_table(f, columns=["msisdn"]).column("msisdn").to_pylist()}
    )


def _online(store, msisdns: list[str]) -> str:
    """Every indicator and its event time, as JSON text: a NaN, 1 against 1.0 or a missing row differ."""
    columns = store.get_online_features(features=REFS, entity_rows=[{"msisdn": m} for m in msisdns]).to_dict(
        include_event_timestamps=True
    )
    return json.dumps(columns, sort_keys=True, default=str)


def _record(store) -> list:
    return sorted(
        (v.name, v.materialization_intervals, int(v.state))
        for v in store.registry.list_feature_views(store.project, allow_cache=False)
    )


def _load_both(world, tmp_path, **more) -> None:
    month = world.months[-1]
    feast, stream = (apply_repository(_settings(world, tmp_path, n, **more)) for n in ("feast", "stream"))
    try:
        materialize_latest(feast, month)
        materialize_latest(stream, month, how="stream")
        customers = _customers(world)
        assert _online(stream, customers) == _online(feast, customers)
        assert _record(stream) == _record(feast)
        assert any(v.materialization_intervals for v in stream.list_feature_views())
    finally:
        if more.get("online_store") == "redis":
            feast.teardown()
            stream.teardown()


def test_streaming_materialization_equals_feasts(tiny_world, tmp_path):
    _load_both(tiny_world, tmp_path)


@pytest.mark.redis
def test_streaming_materialization_equals_feasts_redis(tiny_world, redis_url, tmp_path):
    _load_both(tiny_world, tmp_path, online_store="redis", redis_url=redis_url)


def test_a_view_that_fails_part_way_is_not_recorded(tiny_world, tmp_path):
    import shutil

    import pandas as pd

    from core.io import snapshot_time

    month = tiny_world.months[-1]
    workdir = tmp_path / "broken"
    shutil.copytree(tiny_world.settings.offline_dir, workdir / "offline", symlinks=False)
    store = apply_repository(Settings(workdir=workdir))
    materialize_latest(store, tiny_world.months[-2], how="stream")
    before = dict((name, rest) for name, *rest in _record(store))
    # the second province's usage file of the month is damaged: the first one's rows are written first
    damaged = sorted((workdir / "offline" / "usage").glob(f"*_{month}.parquet"))[-1]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])

    end = snapshot_time(month).to_pydatetime()
    with pytest.raises(pa.ArrowInvalid):  # the damaged file
        materialize_stream(store, end - pd.Timedelta(days=1), end, ["profile", "usage"])
    after = dict((name, rest) for name, *rest in _record(store))
    assert after["usage"] == before["usage"]  # no interval, and its state back from MATERIALIZING
    assert len(after["profile"][0]) == len(before["profile"][0]) + 1  # the view written in full is recorded


@pytest.mark.redis
@pytest.mark.spark
@pytest.mark.slow
def test_spark_materialization_equals_feasts_redis(tiny_world, redis_url, spark, tmp_path):
    """Every row group written by its own Spark task: the same online answers and registry record."""
    month = tiny_world.months[-1]
    more = {"online_store": "redis", "redis_url": redis_url}
    feast, spread = (apply_repository(_settings(tiny_world, tmp_path, n, **more)) for n in ("feast", "spark"))
    try:
        materialize_latest(feast, month)
        materialize_latest(spread, month, how="spark", spark=spark)
        customers = _customers(tiny_world)
        assert _online(spread, customers) == _online(feast, customers)
        assert _record(spread) == _record(feast)
    finally:
        feast.teardown()
        spread.teardown()


def test_spark_materialization_refuses_a_sqlite_online_store(tiny_world, tmp_path):
    from core.errors import ConfigurationError

    store = apply_repository(_settings(tiny_world, tmp_path, "sqlite"))
    with pytest.raises(ConfigurationError, match="TELCOML_ONLINE_STORE=redis"):
        materialize_latest(store, tiny_world.months[-1], how="spark", spark=None)
    assert not any(v.materialization_intervals for v in store.list_feature_views())
