"""The partitioned CRM file's folder swap (``serving.spark_batch``): a province-month replaced by
renames, and what a killed run leaves put right by the next. No Spark needed."""

from __future__ import annotations

import os

from serving.spark_batch import partition_dir, replace_partition, restore_interrupted


def _folder(path, text: str):
    path.mkdir(parents=True)
    (path / "part-00000.parquet").write_text(text)
    return path


def test_a_partition_is_replaced_and_the_others_kept(tmp_path):
    out = tmp_path / "crm"
    _folder(partition_dir(out / "parquet", "HE", "2026-04"), "HE")
    _folder(partition_dir(out / "parquet", "GD", "2026-04"), "old GD")
    new = _folder(tmp_path / "staging" / "GD", "new GD")
    replace_partition(new, partition_dir(out / "parquet", "GD", "2026-04"))
    assert (partition_dir(out / "parquet", "GD", "2026-04") / "part-00000.parquet").read_text() == "new GD"
    assert (partition_dir(out / "parquet", "HE", "2026-04") / "part-00000.parquet").read_text() == "HE"
    assert not new.exists()
    assert sorted(p.name for p in (out / "parquet" / "province=GD").iterdir()) == ["snapshot_month=2026-04"]


def test_a_run_killed_between_the_renames_gets_its_old_partition_back(tmp_path):
    out = tmp_path / "crm"
    final = partition_dir(out / "parquet", "GD", "2026-04")
    # killed after setting the old folder aside and before the new one was moved in
    _folder(final.with_name(f".{final.name}.replaced-0123abcd"), "old GD")
    # killed after the new one was in, before the old one was removed
    done = partition_dir(out / "csv", "GD", "2026-04")
    _folder(done, "new GD")
    _folder(done.with_name(f".{done.name}.replaced-89abcdef"), "old GD")
    touched = restore_interrupted(out)
    assert len(touched) == 2
    assert (final / "part-00000.parquet").read_text() == "old GD"
    assert (done / "part-00000.parquet").read_text() == "new GD"
    assert sorted(p.name for p in (out / "csv" / "province=GD").iterdir()) == ["snapshot_month=2026-04"]


def test_only_the_staging_of_a_gone_process_is_removed(tmp_path):
    out = tmp_path / "crm"
    node = os.uname().nodename
    gone = _folder(out / f".staging-{node}-999999999-0123abcd", "x")  # no pid can be this large
    ours = _folder(out / f".staging-{node}-{os.getpid()}-89abcdef", "x")
    other_machine = _folder(out / ".staging-elsewhere-1-00000000", "x")
    assert restore_interrupted(out) == [gone]
    assert ours.exists() and other_machine.exists() and not gone.exists()
    assert restore_interrupted(tmp_path / "absent") == []


def test_a_province_s_restore_leaves_the_other_provinces_alone(tmp_path):
    """A run restores its own province only: another province's set-aside folder may be a live
    run's, between its two renames (that run holds its own province's lock, not this one's)."""
    out = tmp_path / "crm"
    gd = partition_dir(out / "parquet", "GD", "2026-04")
    he = partition_dir(out / "parquet", "HE", "2026-04")
    gd_aside = _folder(gd.with_name(f".{gd.name}.replaced-0123abcd"), "old GD")
    he_aside = _folder(he.with_name(f".{he.name}.replaced-89abcdef"), "old HE")
    assert restore_interrupted(out, "GD") == [gd_aside]
    assert (gd / "part-00000.parquet").read_text() == "old GD"
    assert he_aside.exists() and not he.exists()
