"""The production profile's indicator build (Spark, local mode) against the pandas build."""

from __future__ import annotations

import pandas as pd
import pytest

from core import indicators as lib
from features.build import available_provinces, offline_file
from features.spark_build import build_indicators_spark, snapshot_windows

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _files(offline_dir) -> list:
    """The indicator snapshot files (the store's other files, prepared answers, are not the build's)."""
    return sorted(
        p.relative_to(offline_dir) for s in lib.SUBJECTS for p in (offline_dir / s).glob("*.parquet")
    )


def test_the_spark_build_writes_the_pandas_build_value_for_value(tiny_world, spark, tmp_path):
    s = tiny_world.settings
    provinces = available_provinces(s.raw_dir)
    out = tmp_path / "offline"
    rows = build_indicators_spark(spark, s.raw_dir, out, provinces, tiny_world.months)

    pandas_files = _files(s.offline_dir)
    assert pandas_files and _files(out) == pandas_files
    expected_rows = 0
    for relative in pandas_files:
        built, reference = pd.read_parquet(out / relative), pd.read_parquet(s.offline_dir / relative)
        # the build's own time stamp differs; its type does not
        assert built["created_timestamp"].dtype == reference["created_timestamp"].dtype
        pd.testing.assert_frame_equal(
            built.drop(columns="created_timestamp"),
            reference.drop(columns="created_timestamp"),
            check_exact=True,
        )
        if relative.parts[0] == "profile":
            expected_rows += len(reference)
    assert rows == expected_rows > 0


def test_a_snapshot_window_is_the_history_the_pandas_build_holds(tiny_world):
    s = tiny_world.settings
    months = tiny_world.months
    windows = snapshot_windows(s.raw_dir, ["GD"], months)
    last = windows[("GD", months[-1])]
    assert len(last) == 12 and last[-1] == months[-1]
    assert windows[("GD", months[0])][-1] == months[0]
    assert offline_file(s.offline_dir, "profile", "GD", months[-1]).exists()
