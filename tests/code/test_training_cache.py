"""The training-frame cache follows its input files."""

from core.settings import Settings
from training.data import _cache_path


def test_regenerated_data_is_not_trained_on_from_an_old_frame(tmp_path):
    s = Settings(workdir=tmp_path)
    snapshot = s.offline_dir / "profile" / "GD_2026-01.parquet"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_bytes(b"first build")
    first = _cache_path(s, "credit_grade_v1", ("2026-01",), None)
    first.parent.mkdir(parents=True)
    first.write_bytes(b"a cached frame")
    assert _cache_path(s, "credit_grade_v1", ("2026-01",), None) == first and first.exists()  # reused

    snapshot.write_bytes(b"rebuilt, another size")
    second = _cache_path(s, "credit_grade_v1", ("2026-01",), None)
    assert second != first and not first.exists()  # the old inputs' frames are gone

    (s.truth_dir / "labels").mkdir(parents=True)
    (s.truth_dir / "labels" / "GD_2026-01.parquet").write_bytes(b"labels")
    assert _cache_path(s, "credit_grade_v1", ("2026-01",), None) != second  # new labels count too
