"""The synthetic operator data: deterministic, plausible, with a known truth and a drift switch;
a steady operator (new lines replace closed ones, the windows are full from the first recorded
month, nothing drifts unless the drift switch says so)."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import indicators as lib
from core.io import month_list, snapshot_time
from core.msisdn import is_msisdn
from core.tasks import CREDIT_GRADES
from features.build import available_months, build_indicators, warehouse_months
from features.generate import PORT_PREFIXES, GeneratorConfig, generate, make_msisdns, ported_msisdns
from features.labels import World, truth_for_snapshot
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
    # numbers ported in keep another operator's prefix: never one of ours
    ported = ported_msisdns(np.arange(200_000))
    assert len(set(ported)) == len(ported) and not set(ported) & set(numbers)
    assert all(is_msisdn(n) and int(n[:3]) in PORT_PREFIXES for n in ported[:1000])


def test_every_raw_table_matches_its_schema(tiny_world):
    raw = tiny_world.settings.raw_dir
    for name, table in TABLES.items():
        if table.fed_back:  # written only by the CRM's feedback (features.feedback_apply)
            continue
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
    p = oracle["churn_probability"].clip(1e-9, 1 - 1e-9)
    by_month = np.log(p / (1 - p))[mzone].groupby(labels["month"]).median()
    # the competitor's offer: +1.3 on M-Zone's churn logit (and the tariff change's increases)
    assert by_month.loc["2026-06"] > by_month.loc["2026-05"] + 1.0


# -- a steady operator ---------------------------------------------------------------------------

#: One province, 12 recorded months after the 11-month warm-up, no drift switch.
STEADY = GeneratorConfig(
    customers=1200, months=12, start_month="2026-01", provinces=("GD",), seed=13, drift_month=None
)


@pytest.fixture(scope="module")
def steady(tmp_path_factory) -> Path:
    """The steady world generated, and its indicators built for the months the store holds."""
    root = tmp_path_factory.mktemp("steady")
    generate(STEADY, root / "raw", root / "truth")
    build_indicators(root / "raw", root / "offline", ["GD"], available_months(root / "raw", "GD"))
    return root


def _subscribers(root: Path) -> pd.DataFrame:
    subs = pd.read_parquet(partition_path(root / "raw", "subscribers", "GD"))
    return subs.assign(
        activation=pd.to_datetime(subs["activation_date"]), close=pd.to_datetime(subs["close_date"])
    )


def _snapshot(root: Path, month: str) -> pd.DataFrame:
    """Every indicator of a month from the offline store, one row per customer."""
    views = [
        pd.read_parquet(root / "offline" / subject / f"GD_{month}.parquet")
        .drop(columns=["event_timestamp", "created_timestamp"])
        .set_index("msisdn")
        for subject in lib.SUBJECTS
    ]
    return pd.concat(views, axis=1)


def _raw(root: Path, table: str, month: str) -> pd.DataFrame:
    frame = pd.read_parquet(partition_path(root / "raw", table, "GD", month))
    return frame.assign(msisdn=frame["msisdn"].astype(str))


def _population(subs: pd.DataFrame, months: list[str]) -> pd.DataFrame:
    """Lines open at each month's end, opened and closed in it."""
    rows = {}
    for month in months:
        start, end = pd.Period(month, "M").start_time, pd.Period(month, "M").end_time
        rows[month] = {
            "open": int(((subs["activation"] <= end) & ~(subs["close"] <= end)).sum()),
            "opened": int(subs["activation"].between(start, end).sum()),
            "closed": int(subs["close"].between(start, end).sum()),
        }
    return pd.DataFrame(rows).T


def test_the_base_stays_steady_as_new_lines_replace_closed_ones(steady):
    subs = _subscribers(steady)
    labels = pd.read_parquet(steady / "truth" / "labels" / "GD.parquet")
    base = labels.groupby("month").size()  # the customers of each snapshot: lines open at its end
    population = _population(subs, STEADY.month_names)
    assert (population["open"] == base.loc[STEADY.month_names]).all()
    assert ((base / base.iloc[0] - 1).abs() < 0.05).all(), base.to_dict()
    opened, closed = population["opened"] / population["open"], population["closed"] / population["open"]
    assert closed.between(0.005, 0.08).all() and opened.between(0.005, 0.08).all(), population
    # about as many open as close, a little more: the planned growth
    assert 1.0 <= population["opened"].sum() / population["closed"].sum() < 1.15
    # the mix of customers does not drift: brand and payment shares of the open lines
    mixes = [
        subs[subs["msisdn"].isin(labels.loc[labels["month"] == month, "msisdn"])]
        for month in (STEADY.month_names[0], STEADY.month_names[-1])
    ]
    for column in ("brand", "payment_method", "customer_category"):
        first, last = (m[column].value_counts(normalize=True) for m in mixes)
        assert ((first - last).fillna(1.0).abs() < 0.02).all(), (column, first, last)


def test_new_lines_open_with_no_history_a_partial_month_and_some_ported_numbers(steady):
    subs = _subscribers(steady)
    month = STEADY.month_names[3]
    start = pd.Period(month, "M").start_time
    new = subs[subs["activation"].between(start, pd.Period(month, "M").end_time)]
    assert len(new) > 10
    # a new number of ours, or one ported in from another operator with its own prefix
    prefix = new["msisdn"].str[:3].astype(int)
    assert prefix[new["ported_in"]].isin(PORT_PREFIXES).all()
    assert not prefix[~new["ported_in"]].isin(PORT_PREFIXES).any()
    newcomers = subs[subs["activation"] >= pd.Timestamp(STEADY.warmup_names[1] + "-01")]
    assert 0.03 < newcomers["ported_in"].mean() < 0.25
    # the lines that switch operators are the mass market: more prepaid than the base
    assert (newcomers["payment_method"] == "prepaid").mean() > (
        subs["payment_method"] == "prepaid"
    ).mean() + 0.1

    snap = _snapshot(steady, month).loc[new["msisdn"]]
    assert (snap["tenure_months"] == 0).all()
    # no arrears on a first bill, and no bill before it to change from
    for column in ("arrears_months_12m", "arrears_suspensions_12m", "arrears_amount", "bill_change_ratio"):
        assert (snap[column] == 0).all(), column
    # their windows hold the opening month only: nothing from before they opened
    for table, columns in (
        ("complaints", ("complaint_count_3m", "complaint_count_12m")),
        ("refunds", ("refund_count_12m",)),
        ("billing_inquiries", ("billing_inquiry_count_3m",)),
    ):
        counts = _raw(steady, table, month)["msisdn"].value_counts().reindex(snap.index).fillna(0)
        for column in columns:
            assert (snap[column] == counts).all(), column
    complained = snap["complaint_count_3m"] > 0
    assert snap.loc[~complained, ["complaint_satisfaction", "days_since_last_complaint"]].isna().all().all()
    opened_days = (snapshot_time(month).tz_localize(None) - new.set_index("msisdn")["activation"]).dt.days
    days = snap["days_since_last_complaint"].dropna()
    assert (days <= opened_days.loc[days.index]).all()
    # usage of the first, partial month: about half a month's on average
    usage = _raw(steady, "usage", month).set_index("msisdn")
    later = _raw(steady, "usage", STEADY.month_names[4]).set_index("msisdn")
    both = new["msisdn"][new["msisdn"].isin(later.index)]
    ratio = usage.loc[both, "voice_minutes"].sum() / later.loc[both, "voice_minutes"].sum()
    # the part of the month each line was open: its first month's usage is about that share
    activated = new.set_index("msisdn").loc[both, "activation"]
    month_days = pd.Period(month, "M").days_in_month
    share = (month_days - activated.dt.day + 1) / month_days
    assert 0.3 < share.mean() < 0.7
    # weighted by each line's usage in a whole month (a heavy user opening early weighs most)
    expected = (share * later.loc[both, "voice_minutes"]).sum() / later.loc[both, "voice_minutes"].sum()
    assert abs(ratio - expected) < 0.2, (ratio, expected)
    # events of the opening month happen after the line opened
    for table, column in (("channel_contacts", "contact_time"), ("billing_inquiries", "inquiry_time")):
        events = _raw(steady, table, month)
        events = events[events["msisdn"].isin(new["msisdn"])]
        opened = events["msisdn"].map(new.set_index("msisdn")["activation"])
        assert len(events) and (pd.to_datetime(events[column]) >= opened).all(), table


def test_every_window_is_full_from_the_first_recorded_month(steady):
    raw, months = steady / "raw", STEADY.month_names
    # the warehouse holds the warm-up months too; the truth and the store only the recorded ones
    assert warehouse_months(raw, "GD") == STEADY.warmup_names + months
    assert len(STEADY.warmup_names) >= 11
    assert available_months(raw, "GD") == months
    labels = pd.read_parquet(steady / "truth" / "labels" / "GD.parquet")
    assert sorted(labels["month"].unique()) == months

    # Each open line has a bill for every month it was open, warm-up included: the first
    # recorded month's 12-month window holds min(12, months open) bills of each customer.
    first = months[0]
    window = month_list(str(pd.Period(first, "M") - 11), 12)
    bills = pd.concat([_raw(steady, "monthly_bills", m) for m in window])["msisdn"].value_counts()
    subs = _subscribers(steady).set_index("msisdn")
    snap = _snapshot(steady, first)
    opened = subs.loc[snap.index, "activation"].dt.to_period("M")
    months_open = (pd.Period(first, "M") - opened).map(lambda d: d.n) + 1
    assert (bills.reindex(snap.index).fillna(0) == np.minimum(months_open, 12)).all()

    # The store shows what the truth saw: the oracle recomputed from the stored indicators of
    # the first recorded month is the oracle written (so its windows reach into the warm-up).
    oracle = pd.read_parquet(steady / "truth" / "oracle" / "GD.parquet").query("month == @first")
    frame = snap.reset_index().assign(event_timestamp=snapshot_time(first))
    again, _ = truth_for_snapshot(frame, World.at(first, None), np.random.default_rng(0))
    again = again.set_index("msisdn").loc[oracle["msisdn"]]
    for column in oracle.columns.drop(["msisdn", "event_timestamp", "province", "month"]):
        np.testing.assert_allclose(again[column].to_numpy(), oracle[column].to_numpy(), err_msg=column)

    # so the 12-month indicators and the days since the last complaint have the same
    # distribution in the first recorded month as in the last
    last = _snapshot(steady, months[-1])
    assert snap["days_since_last_complaint"].max() > 330  # a complaint of 11 months before
    for column in ("complaint_count_12m", "arrears_months_12m", "arrears_suspensions_12m", "tenure_months"):
        assert snap[column].mean() == pytest.approx(last[column].mean(), rel=0.25), column
    days = snap["days_since_last_complaint"], last["days_since_last_complaint"]
    assert days[0].isna().mean() == pytest.approx(days[1].isna().mean(), abs=0.05)
    assert days[0].mean() == pytest.approx(days[1].mean(), rel=0.2)
    answered = (
        snap["outbound_response_rate_12m"].notna().mean(),
        last["outbound_response_rate_12m"].notna().mean(),
    )
    assert answered[0] == pytest.approx(answered[1], abs=0.05)


def test_warm_up_shorter_than_the_windows_is_refused():
    from core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="warmup_months"):
        GeneratorConfig(customers=100, months=2, warmup_months=5)


@pytest.mark.slow
def test_two_steady_years(tmp_path):
    """24 recorded months without the drift switch: the base within 5%, its mix and age steady."""
    config = GeneratorConfig(customers=3000, months=24, provinces=("GD",), seed=7, drift_month=None)
    generate(config, tmp_path / "raw", tmp_path / "truth")
    subs = _subscribers(tmp_path)
    population = _population(subs, config.month_names)
    assert ((population["open"] / population["open"].iloc[0] - 1).abs() < 0.05).all(), population
    assert 1.0 <= population["opened"].sum() / population["closed"].sum() < 1.1
    tenure, prepaid = [], []
    for month in (config.month_names[0], config.month_names[-1]):
        end = pd.Period(month, "M").end_time
        live = subs[(subs["activation"] <= end) & ~(subs["close"] <= end)]
        tenure.append(((end - live["activation"]).dt.days / 30.4375).mean())
        prepaid.append((live["payment_method"] == "prepaid").mean())
    assert tenure[1] == pytest.approx(tenure[0], rel=0.05)  # the base does not age
    assert prepaid[1] == pytest.approx(prepaid[0], abs=0.02)  # nor changes its mix
