"""The production profile's indicator build (Spark, local mode) against the pandas build."""

from __future__ import annotations

import pandas as pd
import pytest

from core import indicators as lib
from features.build import available_provinces, offline_file
from features.spark_build import (
    build_indicators_spark,
    customer_buckets,
    remove_abandoned_builds,
    row_groups,
    snapshot_windows,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _files(offline_dir) -> list:
    """The indicator snapshot files (the store's other files, prepared answers, are not the build's)."""
    return sorted(
        p.relative_to(offline_dir) for s in lib.SUBJECTS for p in (offline_dir / s).glob("*.parquet")
    )


def _by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="created_timestamp").sort_values("msisdn", ignore_index=True)


#: Customers per Spark task: the tiny world's provinces (450 and 727 subscribers) in 3 and 5 buckets.
PER_TASK = 150


def test_the_spark_build_writes_the_pandas_build_value_for_value(tiny_world, spark, tmp_path):
    s = tiny_world.settings
    provinces = available_provinces(s.raw_dir)
    out = tmp_path / "offline"
    rows = build_indicators_spark(
        spark, s.raw_dir, out, provinces, tiny_world.months, customers_per_task=PER_TASK
    )

    pandas_files = _files(s.offline_dir)
    assert pandas_files and _files(out) == pandas_files
    expected_rows = 0
    for relative in pandas_files:
        built, reference = pd.read_parquet(out / relative), pd.read_parquet(s.offline_dir / relative)
        # the build's own time stamp differs; its type does not; rows come grouped by customer bucket
        assert built["created_timestamp"].dtype == reference["created_timestamp"].dtype
        assert built["created_timestamp"].nunique() == 1
        pd.testing.assert_frame_equal(_by_customer(built), _by_customer(reference), check_exact=True)
        if relative.parts[0] == "profile":
            expected_rows += len(reference)
            province = relative.stem.split("_", 1)[0]
            subscribers = pd.read_parquet(s.raw_dir / "subscribers" / f"province={province}")
            buckets = customer_buckets(built["msisdn"], -(-len(subscribers) // PER_TASK))
            assert len(set(buckets)) > 1 and (buckets[1:] >= buckets[:-1]).all()  # one bucket after another
    assert rows == expected_rows > 0
    # the stages' files are gone once the build is done
    assert (tmp_path / "spark-staging").is_dir() and not list((tmp_path / "spark-staging").iterdir())


def test_every_task_holds_a_bucket_of_customers_not_a_province(tiny_world):
    s = tiny_world.settings
    windows = snapshot_windows(s.raw_dir, ["GD"], tiny_world.months)
    work = row_groups(s.raw_dir, windows, PER_TASK)
    subscribers = pd.read_parquet(s.raw_dir / "subscribers" / "province=GD")
    assert {w[5] for w in work} == {-(-len(subscribers) // PER_TASK)} and len(subscribers) > 2 * PER_TASK
    # a customer's bucket depends on the number alone: its type, its neighbours, the width of the
    # other numbers (one width takes a faster path) do not change it
    numbers = ["13800000000", "13912345678"]
    same = customer_buckets(pd.Series(numbers), 97)
    assert list(customer_buckets(pd.Series(numbers, dtype="category"), 97)) == list(same)
    mixed = customer_buckets(pd.Series(["", numbers[0], "861", numbers[1]]), 97)
    assert list(mixed[[1, 3]]) == list(same) and same[0] != same[1]


def test_a_missing_raw_partition_is_refused_by_name_before_any_job(tiny_world, tmp_path):
    import shutil

    from core.errors import NotReadyError

    raw = tmp_path / "raw"
    shutil.copytree(tiny_world.settings.raw_dir, raw)
    month = tiny_world.months[-1]
    victim = raw / "complaints" / "province=GD" / f"month={month}" / "part-0.parquet"
    victim.unlink()
    with pytest.raises(NotReadyError, match=str(victim)):
        row_groups(raw, snapshot_windows(raw, ["GD"], tiny_world.months), PER_TASK)


def test_a_snapshot_window_is_the_history_the_pandas_build_holds(tiny_world):
    s = tiny_world.settings
    months = tiny_world.months
    windows = snapshot_windows(s.raw_dir, ["GD"], months)
    last = windows[("GD", months[-1])]
    assert len(last) == 12 and last[-1] == months[-1]
    assert windows[("GD", months[0])][-1] == months[0]
    assert offline_file(s.offline_dir, "profile", "GD", months[-1]).exists()


def test_a_killed_builds_staging_files_are_removed_by_the_next_build(tmp_path):
    import os
    import subprocess

    host = os.uname().nodename
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that ran and ended: a driver that was killed
    abandoned = tmp_path / f"build-{host}-{gone.pid}-0a1b2c3d"
    (abandoned / "pieces" / "GD").mkdir(parents=True)
    (abandoned / "pieces" / "GD" / "000001.arrow").write_bytes(b"half")
    running = tmp_path / f"build-{host}-{os.getpid()}-0a1b2c3d"  # this process: a build under way
    other_host = tmp_path / f"build-elsewhere-{gone.pid}-0a1b2c3d"  # another machine's driver
    running.mkdir()
    other_host.mkdir()
    assert remove_abandoned_builds(tmp_path) == [abandoned]
    assert not abandoned.exists() and running.exists() and other_host.exists()
