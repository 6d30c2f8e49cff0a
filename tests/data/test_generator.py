"""The synthetic operator data: deterministic, plausible, with a known truth and a drift switch."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.tasks import CREDIT_GRADES
from features.generate import GeneratorConfig, generate, make_msisdns
from features.schemas import TABLES, partition_path


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(pd.read_parquet(p).to_csv().encode()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    config = GeneratorConfig(customers=300, months=2, provinces=("GD",), seed=3)
    generate(config, tmp_path / "a" / "raw", tmp_path / "a" / "truth")
    generate(config, tmp_path / "b" / "raw", tmp_path / "b" / "truth")
    other = GeneratorConfig(customers=300, months=2, provinces=("GD",), seed=4)
    generate(other, tmp_path / "c" / "raw", tmp_path / "c" / "truth")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_phone_numbers_are_unique_eleven_digit_mobile_numbers():
    numbers = make_msisdns(0, 200_000)
    assert len(set(numbers)) == len(numbers)
    assert all(len(n) == 11 and n[0] == "1" for n in numbers[:1000])


def test_every_raw_table_matches_its_schema(tiny_world):
    raw = tiny_world.settings.raw_dir
    for name, table in TABLES.items():
        path = partition_path(raw, name, "GD", tiny_world.months[0] if table.monthly else None)
        frame = pd.read_parquet(path)
        assert list(frame.columns) == table.column_names, name
        assert not frame.duplicated(list(table.key)).any(), name


def test_distributions_are_plausible(tiny_world):
    raw, months = tiny_world.settings.raw_dir, tiny_world.months
    subs = pd.concat([pd.read_parquet(partition_path(raw, "subscribers", p)) for p in ("GD", "SC")])
    vip = subs["customer_category"].str.startswith("vip").mean()
    assert 0.01 < vip < 0.10  # VIPs are under 5% of customers in the documents
    assert (
        subs.groupby("province")["brand"].value_counts(normalize=True).loc[("SC", "easyown")]
        > subs.groupby("province")["brand"].value_counts(normalize=True).loc[("GD", "easyown")]
    )
    bills = pd.concat([pd.read_parquet(partition_path(raw, "monthly_bills", "GD", m)) for m in months])
    fee = bills["total_fee"]
    assert 30 < fee.median() < 200 and fee.quantile(0.99) > 3 * fee.median()  # heavy right tail
    usage = pd.read_parquet(partition_path(raw, "usage", "GD", months[0]))
    assert 0.0 < usage["data_mb"].isna().mean() < 0.05  # the GPRS feed has gaps
    # latent traits couple tables: customers who complain more also inquire more about bills
    labels = tiny_world.labels
    assert labels["churned_next_month"].mean() == pytest.approx(0.03, abs=0.02)
    grades = labels["credit_grade"].value_counts(normalize=True)
    assert set(grades.index) == {g[0] for g in CREDIT_GRADES}
    assert grades.loc[3] == grades.max()  # "average" is the most common grade


def test_oracle_is_a_proper_probability_and_labels_follow_it(tiny_world):
    truth = tiny_world.settings.truth_dir
    oracle = pd.concat(
        [pd.read_parquet(p) for p in sorted((truth / "oracle").glob("*.parquet"))], ignore_index=True
    )
    labels = tiny_world.labels
    grade_p = oracle.filter(like="p_credit_grade_").to_numpy()
    np.testing.assert_allclose(grade_p.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(oracle.filter(like="p_channel_").sum(axis=1), 1.0, atol=1e-9)
    assert (
        oracle[["msisdn", "event_timestamp"]].to_numpy() == labels[["msisdn", "event_timestamp"]].to_numpy()
    ).all()
    # labels are drawn from the oracle: high-probability churners churn more
    high = oracle["churn_probability"] > oracle["churn_probability"].quantile(0.8)
    assert labels.loc[high, "churned_next_month"].mean() > 2 * labels.loc[~high, "churned_next_month"].mean()
    expected_grade = grade_p @ np.arange(1, 6)
    assert np.corrcoef(expected_grade, labels["credit_grade"])[0, 1] > 0.4


def test_truth_is_never_in_the_feature_store(tiny_world):
    offline = tiny_world.settings.offline_dir
    columns = set()
    for f in offline.rglob("*.parquet"):
        columns |= set(pd.read_parquet(f).columns)
    assert not columns & {"credit_grade", "churned_next_month", "churn_probability", "preferred_channel"}


def test_churned_lines_close_and_leave_the_bills(tiny_world):
    raw, months = tiny_world.settings.raw_dir, tiny_world.months
    labels = tiny_world.labels.query("province == 'GD' and month == @months[0] and churned_next_month == 1")
    assert len(labels) > 0
    subs = pd.read_parquet(partition_path(raw, "subscribers", "GD")).set_index("msisdn")
    assert (subs.loc[labels["msisdn"], "status"] == "closed").all()
    later = pd.read_parquet(partition_path(raw, "monthly_bills", "GD", months[2]))
    assert not set(labels["msisdn"]) & set(later["msisdn"].astype(str))


def test_drift_month_sends_billing_inquiries_up(tmp_path):
    config = GeneratorConfig(
        customers=3000, months=3, start_month="2026-04", provinces=("GD",), drift_month="2026-06"
    )
    generate(config, tmp_path / "raw", tmp_path / "truth")
    counts = [
        len(pd.read_parquet(partition_path(tmp_path / "raw", "billing_inquiries", "GD", m)))
        for m in config.month_names
    ]
    assert counts[2] > 2 * counts[1]
    fees = [
        pd.read_parquet(partition_path(tmp_path / "raw", "monthly_bills", "GD", m))["total_fee"].mean()
        for m in config.month_names
    ]
    assert fees[2] > 1.1 * fees[1]
    labels = pd.read_parquet(tmp_path / "truth" / "labels" / "GD.parquet")
    oracle = pd.read_parquet(tmp_path / "truth" / "oracle" / "GD.parquet")
    mzone = labels["msisdn"].isin(
        pd.read_parquet(partition_path(tmp_path / "raw", "subscribers", "GD")).query("brand == 'mzone'")[
            "msisdn"
        ]
    )
    by_month = oracle[mzone].groupby(labels["month"])["churn_probability"].mean()
    assert by_month.loc["2026-06"] > 2 * by_month.loc["2026-05"]  # the competitor's offer
