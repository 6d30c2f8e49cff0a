"""The latest snapshot's quality check reads a province's part at a time, never every province."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import indicators as lib
from core.settings import Settings
from features.build import offline_file, snapshot_parts
from telcoml.pipeline import check_latest_snapshot, latest_month


def _copy(world, tmp_path) -> Settings:
    settings = Settings(workdir=tmp_path / "work")
    shutil.copytree(world.settings.offline_dir, settings.offline_dir)
    return settings


def _in_row_groups(path, size: int) -> None:
    """Rewrite a snapshot file as the Spark build writes it: row groups of ``size`` customers."""
    table = pq.read_table(path)
    pq.write_table(table, path, row_group_size=size)


def _whole_month(settings: Settings, month: str) -> pd.DataFrame:
    frames = []
    for subject in lib.SUBJECTS:
        files = sorted((settings.offline_dir / subject).glob(f"*_{month}.parquet"))
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        frames.append(frame.drop(columns=["event_timestamp", "created_timestamp"]).set_index("msisdn"))
    return pd.concat(frames, axis=1).reset_index().sort_values("msisdn", ignore_index=True)


def test_the_parts_are_the_whole_month_one_bucket_at_a_time(tiny_world, tmp_path):
    settings = _copy(tiny_world, tmp_path)
    month = latest_month(settings)
    for subject in lib.SUBJECTS:  # Guangdong's files in row groups of 100 customers, as buckets
        _in_row_groups(offline_file(settings.offline_dir, subject, "GD", month), 100)
    parts = list(snapshot_parts(settings.offline_dir, month))
    by_province = pd.Series([p for p, _, _ in parts]).value_counts()
    gd = pq.ParquetFile(offline_file(settings.offline_dir, "profile", "GD", month)).metadata
    assert by_province["GD"] == gd.num_row_groups > 1 and by_province.drop("GD").eq(1).all()
    gd_parts = [(first, part) for p, first, part in parts if p == "GD"]
    assert all(len(part) <= 100 for _, part in gd_parts)
    assert [first for first, _ in gd_parts] == [0, *pd.Series([len(p) for _, p in gd_parts]).cumsum()[:-1]]
    joined = pd.concat([part for _, _, part in parts]).sort_values("msisdn", ignore_index=True)
    pd.testing.assert_frame_equal(joined, _whole_month(settings, month)[joined.columns], check_exact=True)


def test_a_bad_value_is_named_by_province_and_row_of_its_file(tiny_world, tmp_path):
    settings = _copy(tiny_world, tmp_path)
    month = latest_month(settings)
    path = offline_file(settings.offline_dir, "profile", "GD", month)
    table = pq.read_table(path)
    levels = table.column("number_level").to_numpy().copy()
    levels[250] = 9  # number levels run 0-4
    pq.write_table(
        table.set_column(table.schema.get_field_index("number_level"), "number_level", pa.array(levels)),
        path,
        row_group_size=100,
    )
    for subject in lib.SUBJECTS[1:]:
        _in_row_groups(offline_file(settings.offline_dir, subject, "GD", month), 100)

    assert not [
        p for p in check_latest_snapshot(_copy(tiny_world, tmp_path / "clean")) if p.column == "number_level"
    ]
    found = [p for p in check_latest_snapshot(settings) if p.column == "number_level"]
    assert len(found) == 1
    assert (found[0].province, found[0].month, found[0].rows) == ("GD", month, [250])
