"""The data-quality gate: clean data passes, each kind of bad input is rejected with a
message naming table, partition, column and rows, and a rejected ingest leaves raw/ untouched."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataQualityError
from core.indicators import CATALOGUE
from features.generate import GeneratorConfig, generate
from features.ingest import ingest
from features.quality import (
    DIMENSIONS,
    check_frame,
    check_indicators,
    check_partition,
    check_raw,
    per_indicator,
)
from features.schemas import TABLES, partition_path

CONFIG = GeneratorConfig(customers=300, months=3, provinces=("GD", "SC"))
M0, M1, M2 = CONFIG.month_names  # 2025-11, 2025-12, 2026-01


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("quality")
    generate(CONFIG, root / "raw", root / "truth")
    return root / "raw"


@pytest.fixture(scope="module")
def refund_month(dataset) -> str:
    """The month (recorded or warm-up: the warehouse's history) whose GD refunds partition has
    the most rows (refunds are rare: a small province has none in most months)."""
    months = sorted(
        p.name.removeprefix("month=") for p in (dataset / "refunds" / "province=GD").glob("month=*")
    )
    return max(months, key=lambda m: len(pd.read_parquet(_part(dataset, "refunds", "GD", m))))


@pytest.fixture
def raw(dataset, tmp_path) -> Path:
    """A private copy of the clean raw folder, to corrupt."""
    return Path(shutil.copytree(dataset, tmp_path / "raw"))


def _part(root: Path, table: str, province: str = "GD", month: str | None = M0) -> Path:
    return partition_path(root, table, province, month if TABLES[table].monthly else None)


def _rewrite(path: Path, change) -> pd.DataFrame:
    frame = change(pd.read_parquet(path))
    frame.to_parquet(path, index=False)
    return frame


def _rejects(root: Path, **kwargs):
    report = check_raw(root, **kwargs)
    assert not report.passed
    return report.rejects


def _only(problems, **match):
    found = [p for p in problems if all(getattr(p, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [str(p) for p in problems])
    return found[0]


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_clean_data_passes_with_a_summary_per_table(dataset):
    report = check_raw(dataset)
    assert report.passed, [str(p) for p in report.rejects]
    monthly = sum(t.monthly for t in TABLES.values())
    assert len(report.files) == 2 * (monthly * (CONFIG.warmup_months + 3) + 2)
    assert set(report.per_table) == {name for name, t in TABLES.items() if not t.fed_back}
    usage = report.per_table["usage"]
    assert usage["files"] == 2 * (CONFIG.warmup_months + 3) and usage["rows"] > 500
    assert 0 < usage["null_share"]["data_mb"] < 0.05
    assert set(usage["problems"]) == set(DIMENSIONS)
    assert all(p.severity == "warn" for p in report.problems)
    assert json.loads(json.dumps(report.to_dict()))["passed"] is True
    report.raise_if_rejected()


def test_dropped_column_is_rejected(raw):
    _rewrite(_part(raw, "usage"), lambda f: f.drop(columns=["data_mb"]))
    p = _only(_rejects(raw), column="data_mb")
    assert p.dimension == "completeness" and "missing column" in p.message
    assert str(p).startswith(f"usage province=GD month={M0}: column data_mb:")


def test_extra_column_is_only_a_warning(raw):
    _rewrite(_part(raw, "usage"), lambda f: f.assign(note="x"))
    report = check_raw(raw)
    assert report.passed
    assert _only(report.warnings, column="note").file == f"raw/usage/province=GD/month={M0}/part-0.parquet"


def test_string_in_a_float_column_is_rejected_naming_the_row(raw):
    def corrupt(f):
        f["total_fee"] = f["total_fee"].astype(str)
        f.loc[5, "total_fee"] = "n/a"
        return f

    _rewrite(_part(raw, "monthly_bills", "SC", M1), corrupt)
    p = _only(_rejects(raw), column="total_fee")
    assert p.dimension == "accuracy" and p.rows == [5]  # numeric strings elsewhere are tolerated
    assert str(p) == (
        f"monthly_bills province=SC month={M1}: column total_fee rows [5]: "
        "value 'n/a' not of type float (stored as object) (accuracy)"
    )


def test_duplicate_keys_are_rejected_with_both_rows(raw):
    frame = _rewrite(_part(raw, "monthly_bills"), lambda f: pd.concat([f, f.iloc[[7]]], ignore_index=True))
    p = _only(_rejects(raw), column="msisdn, bill_month")
    assert p.rows == [7, len(frame) - 1] and "share their key" in p.message


def test_out_of_range_value_is_rejected(raw):
    def corrupt(f):
        f.loc[[3, 17], "data_mb"] = -5.0
        return f

    _rewrite(_part(raw, "usage", "GD", M2), corrupt)
    p = _only(_rejects(raw), column="data_mb")
    assert str(p) == (
        "usage province=GD month=2026-01: column data_mb rows [3, 17]: "
        "value -5.0 outside valid range [0, 5000000] (accuracy)"
    )


def test_unknown_code_is_rejected(raw):
    def corrupt(f):
        f.loc[2, "brand"] = "platinum"
        return f

    _rewrite(_part(raw, "subscribers", "SC"), corrupt)
    p = _only(_rejects(raw), column="brand")
    assert p.rows == [2] and "'platinum' not among the codes" in p.message
    assert p.file == "raw/subscribers/province=SC/part-0.parquet"


def test_empty_file_is_rejected(raw):
    _part(raw, "payments", "SC", M1).write_bytes(b"")
    p = _only(_rejects(raw), table="payments")
    assert p.file == f"raw/payments/province=SC/month={M1}/part-0.parquet"
    assert str(p) == f"payments province=SC month={M1}: empty file (0 bytes) (completeness)"


def test_truncated_file_is_rejected(raw):
    path = _part(raw, "usage", "SC", M2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    p = _only(_rejects(raw), table="usage")
    assert p.file == f"raw/usage/province=SC/month={M2}/part-0.parquet"
    assert "unreadable or truncated Parquet file" in p.message


def test_missing_month_partition_is_rejected(raw):
    _part(raw, "usage", "SC", M1).unlink()
    p = _only(_rejects(raw), table="usage")
    assert p.dimension == "timeliness" and "missing partition" in p.message
    assert p.file == f"raw/usage/province=SC/month={M1}/part-0.parquet"


def test_months_given_are_expected(raw):
    later = "2026-02"
    p = [x for x in _rejects(raw, provinces=["GD"], months=[M2, later]) if "missing partition" in x.message]
    assert {x.table for x in p} == {t for t, spec in TABLES.items() if spec.monthly}
    assert all(later in x.file for x in p)


def test_malformed_msisdn_is_rejected(raw):
    def corrupt(f):
        f["msisdn"] = f["msisdn"].astype(str)
        f.loc[4, "msisdn"] = "1380013"
        return f

    _rewrite(_part(raw, "usage"), corrupt)
    rejects = _rejects(raw)
    p = _only(rejects, column="msisdn", dimension="accuracy")
    assert p.rows == [4] and "not 11 digits" in p.message and "'1380013'" in p.message
    assert _only(rejects, column="msisdn", dimension="authenticity").rows == [4]


def test_rows_outside_the_partition_month_are_rejected(raw):
    def late_bill(f):
        f.loc[1, "bill_month"] = M1
        return f

    def late_complaint(f):
        f.loc[0, "complaint_time"] = pd.Timestamp(f"{M1}-03 10:00")
        return f

    _rewrite(_part(raw, "monthly_bills"), late_bill)
    _rewrite(_part(raw, "complaints"), late_complaint)
    rejects = _rejects(raw)
    assert _only(rejects, column="bill_month").rows == [1]
    p = _only(rejects, column="complaint_time")
    assert p.dimension == "timeliness" and p.rows == [0] and M0 in p.message


def test_bad_credit_events_and_gifts_are_rejected_naming_column_and_rows(raw):
    lines = pd.read_parquet(_part(raw, "subscribers", "GD"))["msisdn"].astype(str).iloc[:3].tolist()
    events = pd.DataFrame(
        {
            "event_id": ["E1", "E2", "E3"],
            "msisdn": lines,
            "event_time": pd.to_datetime([f"{M1}-05 10:00", f"{M1}-06 11:00", f"{M2}-02 09:00"]),
            "event_type": ["complaint_unfounded", "fraud", "refund_reversed"],
            "amount": [np.nan, 10.0, -3.0],
        }
    )
    events.to_parquet(_part(raw, "credit_events", "GD", M1), index=False)
    _rewrite(_part(raw, "small_gifts", "SC", M2), lambda f: f.assign(amount=f["amount"] * 0 + 5_000.0))
    rejects = _rejects(raw)
    p = _only(rejects, table="credit_events", column="event_type")
    assert p.rows == [1] and "'fraud' not among the codes" in p.message
    assert str(_only(rejects, table="credit_events", column="amount")) == (
        f"credit_events province=GD month={M1}: column amount rows [2]: "
        "value -3.0 outside valid range [0, 100000] (accuracy)"
    )
    late = _only(rejects, table="credit_events", column="event_time")
    assert late.dimension == "timeliness" and late.rows == [2]
    gifts = _only(rejects, table="small_gifts", column="amount")
    assert gifts.province == "SC" and "outside valid range [0.01, 500]" in gifts.message


def test_cross_table_authenticity(raw, refund_month):
    bills = pd.read_parquet(_part(raw, "monthly_bills", "GD", M2))
    billed = bills["msisdn"].astype(str).iloc[0]

    def close_early(f):
        f.loc[f["msisdn"] == billed, ["status", "close_date"]] = ["closed", pd.Timestamp(f"{M0}-15").date()]
        return f

    _rewrite(_part(raw, "subscribers"), close_early)

    def stranger(f):
        f["msisdn"] = f["msisdn"].astype(str)
        f.loc[0, "msisdn"] = "19999999999"
        return f

    _rewrite(_part(raw, "usage", "SC", M0), stranger)
    refunds = _rewrite(
        _part(raw, "refunds", "GD", refund_month), lambda f: f.assign(complaint_id="C-unknown")
    )
    assert len(refunds)

    report = check_raw(raw)
    stranger_usage = _only(report.rejects, dimension="authenticity")
    assert stranger_usage.file == f"raw/usage/province=SC/month={M0}/part-0.parquet"
    assert stranger_usage.rows == [0]
    closed = [p for p in report.warnings if p.message.startswith("bills for closed lines")]
    assert [p.file for p in closed] == [
        f"raw/monthly_bills/province=GD/month={m}/part-0.parquet" for m in (M1, M2)
    ]
    assert closed[-1].rows == [0]
    refund = next(
        p
        for p in report.warnings
        if p.dimension == "authenticity"
        and p.file == f"raw/refunds/province=GD/month={refund_month}/part-0.parquet"
    )
    assert f"{len(refunds)} of {len(refunds)} refunds (100.0%)" in refund.message


def test_a_partition_problem_names_its_table_and_partition(raw, refund_month):
    _rewrite(_part(raw, "refunds", "GD", refund_month), lambda f: f.assign(complaint_id="C-unknown"))
    _rewrite(_part(raw, "subscribers", "SC"), lambda f: f.assign(brand="platinum"))
    _part(raw, "usage", "SC", M2).unlink()
    stray = _part(raw, "payments", "GD", M0).with_suffix(".csv")
    stray.write_text("msisdn\n")  # a second file for one partition
    report = check_raw(raw)

    refund = _only(
        report.warnings, table="refunds", dimension="authenticity", province="GD", month=refund_month
    )
    assert refund.column == "complaint_id"
    assert refund.file == f"raw/refunds/province=GD/month={refund_month}/part-0.parquet"
    assert str(refund).startswith(f"refunds province=GD month={refund_month}: column complaint_id rows [0")
    assert "refunds without complaints" in str(refund)
    brand = _only(report.rejects, column="brand")  # a master table: no month
    assert (brand.province, brand.month) == ("SC", None)
    assert str(brand).startswith("subscribers province=SC: column brand rows [0, 1")
    missing = _only(report.rejects, table="usage", dimension="timeliness")
    assert str(missing).startswith(f"usage province=SC month={M2}: missing partition")
    twice = _only(report.rejects, table="payments", dimension="accuracy")
    assert str(twice).startswith(f"payments province=GD month={M0}: two files for one partition")
    assert "part-0.csv" in twice.message and "part-0.parquet" in twice.message  # which two
    assert report.to_dict()["problems"][0]["province"] in ("GD", "SC")
    # Problems that are not about a partition are still named by their file or frame.
    assert str(
        _only(check_frame(pd.DataFrame({"msisdn": ["1"]}), "red_black_list", "inline"), column="list_type")
    ).startswith("inline: column list_type")


def test_check_frame_is_lenient_about_representation():
    frame = pd.DataFrame(
        {
            "refund_id": ["RGD2026010000001", "RGD2026010000002"],
            "msisdn": pd.Categorical(["13800000001", "13800000002"]),
            "refund_time": ["2026-01-03 10:00:00", "2026-01-31T23:59:59"],
            "amount": [12, 40.5],
            "is_double_refund": [0, 1],
            "complaint_id": ["CGD2026010000001", "CGD2026010000002"],
        }
    )
    assert check_frame(frame, "refunds", "inline", month="2026-01") == []
    partial = pd.DataFrame({"msisdn": ["13800000001"], "number_level": [2.0]})
    problems = check_frame(partial, "subscribers", "inline")
    missing = {p.column for p in problems if "missing column" in p.message}
    assert missing == set(TABLES["subscribers"].column_names) - {"msisdn", "number_level"}
    assert not [p for p in problems if p.column == "number_level"]
    fractional = check_frame(partial.assign(number_level=[2.5]), "subscribers", "inline")
    assert [p.rows for p in fractional if p.column == "number_level"] == [[0]]


def test_csv_partitions_are_checked_and_ingested_as_parquet(dataset, tmp_path):
    source = tmp_path / "incoming"
    shutil.copytree(dataset, source)
    path = _part(source, "usage", "SC", M1)
    original = pd.read_parquet(path)
    original.to_csv(path.with_suffix(".csv"), index=False)
    path.unlink()
    assert not [p for p in check_partition(path.with_suffix(".csv"), "usage") if p.severity == "reject"]
    ingest(source, tmp_path / "raw")
    back = pd.read_parquet(_part(tmp_path / "raw", "usage", "SC", M1))
    pd.testing.assert_frame_equal(
        back.assign(msisdn=back["msisdn"].astype(str)),
        original.assign(msisdn=original["msisdn"].astype(str)),
        check_dtype=False,
    )


def test_rejected_ingest_writes_nothing_and_a_good_one_replaces_files(dataset, tmp_path):
    raw = tmp_path / "raw"
    first = ingest(dataset, raw)
    assert first.passed and _hashes(raw) == _hashes(dataset)
    before = _hashes(raw)

    source = Path(shutil.copytree(dataset, tmp_path / "source"))
    changed = _part(source, "usage", "GD", M1)
    _rewrite(changed, lambda f: f.assign(voice_minutes=f["voice_minutes"] + 1.0))
    bad = _part(source, "monthly_bills", "SC", M2)
    bad_bytes = bad.read_bytes()
    _rewrite(bad, lambda f: f.assign(total_fee=-1.0))
    with pytest.raises(DataQualityError) as err:
        ingest(source, raw)
    assert f"monthly_bills province=SC month={M2}: column total_fee" in str(err.value)
    assert err.value.problems[0].file == f"source/monthly_bills/province=SC/month={M2}/part-0.parquet"
    assert all(p.severity == "reject" for p in err.value.problems)
    assert _hashes(raw) == before  # byte-identical, and no temporary files left behind

    bad.write_bytes(bad_bytes)
    second = ingest(source, raw)
    assert second.passed
    after = _hashes(raw)
    key = str(changed.relative_to(source))
    assert after[key] != before[key] and after[key] == _hashes(source)[key]
    assert {k for k in after if after[k] != before[k]} == {key}


def test_partial_source_replaces_only_its_files(dataset, tmp_path):
    raw = tmp_path / "raw"
    ingest(dataset, raw)
    before = _hashes(raw)
    source = tmp_path / "delivery"
    target = _part(source, "usage", "SC", M2)
    target.parent.mkdir(parents=True)
    shutil.copyfile(_part(dataset, "usage", "SC", M2), target)
    _rewrite(target, lambda f: f.assign(sms_count=f["sms_count"] + 1))
    assert ingest(source, raw).passed  # the rest of the month comes from raw/ itself
    after = _hashes(raw)
    assert {k for k in after if after[k] != before[k]} == {str(target.relative_to(source))}


def test_ingest_of_an_empty_source_is_rejected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataQualityError, match="no partitions"):
        ingest(tmp_path / "empty", tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def _indicator_frame(rows: int = 3) -> pd.DataFrame:
    columns = {"msisdn": [f"1380000000{i}" for i in range(rows)]}
    for ind in CATALOGUE:
        if ind.kind == "category":
            columns[ind.id] = [ind.codes[0]] * rows
        else:
            lo = ind.valid_range[0] if ind.valid_range else 0
            columns[ind.id] = np.full(rows, lo, dtype="int64" if ind.kind == "int" else "float64")
    return pd.DataFrame(columns)


def test_check_indicators_flags_range_and_required_nulls():
    frame = _indicator_frame()
    assert check_indicators(frame) == []
    frame.loc[1, "tenure_months"] = 9_999
    frame.loc[2, "monthly_consumption"] = np.nan
    problems = check_indicators(frame)
    assert len(problems) == 2
    tenure = _only(problems, column="tenure_months")
    assert tenure.dimension == "accuracy" and tenure.rows == [1] and "[0, 600]" in tenure.message
    consumption = _only(problems, column="monthly_consumption")
    assert consumption.dimension == "completeness" and consumption.rows == [2]
    summary = per_indicator(frame)
    assert summary["monthly_consumption"]["null_share"] == pytest.approx(1 / 3)
    assert summary["tenure_months"]["max"] == 9_999
    assert summary["brand"]["codes"] == {"gotone": 1.0}
    json.dumps(summary)
