"""The generator's credit evidence and small gifts: point-in-time, one source with the red/black list,
following the truth's credit score, and leaving every other table as it was."""

import numpy as np
import pandas as pd
import pytest

from features import generate as generator
from features.generate import GeneratorConfig, generate
from features.outcomes import DEFAULT_OUTCOME, credit_bad_event
from features.schemas import TABLES, partition_path

#: Big enough for each oracle grade to have matured outcomes (about 2 s).
EVIDENCE = GeneratorConfig(customers=6000, months=7, start_month="2026-01", provinces=("GD",), seed=3)


def _table(raw, name: str, province: str, months) -> pd.DataFrame:
    return pd.concat(
        [pd.read_parquet(partition_path(raw, name, province, m)).assign(month=m) for m in months],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def evidence_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("evidence")
    generate(EVIDENCE, root / "raw", root / "truth")
    return root


def test_events_and_gifts_are_point_in_time_and_one_source_with_the_lists(tiny_world):
    raw, config = tiny_world.settings.raw_dir, tiny_world.config
    months = config.simulated_names
    for province in config.provinces:
        subs = pd.read_parquet(partition_path(raw, "subscribers", province)).set_index("msisdn")
        events = _table(raw, "credit_events", province, months)
        gifts = _table(raw, "small_gifts", province, months)
        for frame, time in ((events, "event_time"), (gifts, "gift_time")):
            # in its month's partition, on a known line, after it opened and not after it closed
            assert (pd.to_datetime(frame[time]).dt.strftime("%Y-%m") == frame["month"]).all()
            line = subs.loc[frame["msisdn"]]
            opened = pd.to_datetime(line["activation_date"]).to_numpy()
            closed = pd.to_datetime(line["close_date"]).to_numpy() + np.timedelta64(1, "D")
            t = pd.to_datetime(frame[time]).to_numpy()
            assert (t >= opened).all() and ((t < closed) | pd.isna(closed)).all(), time
        assert gifts["amount"].between(*TABLES["small_gifts"].column("amount").valid_range).all()
        # every black-list entry of the simulated months is an event, and every listing event is an entry
        lists = pd.read_parquet(partition_path(raw, "red_black_list", province))
        black = lists[(lists["list_type"] == "black")]
        black = black[pd.to_datetime(black["listed_date"]).dt.strftime("%Y-%m").isin(months)]
        listed = events[events["event_type"] == "black_listed"]
        assert sorted(zip(black["msisdn"], pd.to_datetime(black["listed_date"]))) == sorted(
            zip(listed["msisdn"], pd.to_datetime(listed["event_time"]))
        )
        assert listed["amount"].isna().all()


def test_the_outcome_label_is_computed_from_the_events_written(tiny_world):
    raw, config = tiny_world.settings.raw_dir, tiny_world.config
    labels = tiny_world.labels
    for province in config.provinces:
        events = _table(raw, "credit_events", province, config.simulated_names)
        mine = labels[labels["province"] == province]
        again = credit_bad_event(mine, events, config.month_names[-1])
        np.testing.assert_array_equal(mine["credit_bad_event"].to_numpy(), again.to_numpy())
    # matured only where the data covers the horizon: the 4-month world's first month
    matured = labels.groupby("month")["credit_bad_event"].apply(lambda s: s.notna().all())
    horizon, recorded = DEFAULT_OUTCOME.horizon_months, len(config.month_names)
    assert matured.to_dict() == {m: i + horizon < recorded for i, m in enumerate(matured.index)}


def test_bad_events_fall_with_the_oracle_grade_and_match_the_oracle(evidence_world):
    labels = pd.read_parquet(evidence_world / "truth" / "labels" / "GD.parquet")
    oracle = pd.read_parquet(evidence_world / "truth" / "oracle" / "GD.parquet")
    frame = labels.merge(oracle, on=["msisdn", "event_timestamp", "province", "month"])
    grades = [c for c in oracle.columns if c.startswith("p_credit_grade_")]
    frame["oracle_grade"] = frame[grades].to_numpy().argmax(axis=1) + 1
    matured = frame[frame["credit_bad_event"].notna()]
    rate = matured.groupby("oracle_grade")["credit_bad_event"].mean()
    assert list(rate.index) == [1, 2, 3, 4, 5] and (np.diff(rate.to_numpy()) < 0).all(), rate.to_dict()
    assert rate[1] > 10 * rate[5]
    # the oracle's probability is calibrated overall (the listing is drawn apart, and rare)
    assert matured["credit_bad_event"].mean() == pytest.approx(matured["p_credit_bad_event"].mean(), rel=0.15)


def test_the_other_tables_do_not_depend_on_the_evidence(tmp_path, monkeypatch):
    config = GeneratorConfig(customers=300, months=2, provinces=("GD",), seed=5)
    generate(config, tmp_path / "with" / "raw", tmp_path / "with" / "truth")

    def no_evidence(pop, known, complaints, month, rng, share=None):
        never = np.array([], "datetime64[s]")
        events = pd.DataFrame({"msisdn": [], "event_time": never, "event_type": [], "amount": np.zeros(0)})
        gifts = pd.DataFrame({"msisdn": [], "gift_time": never, "amount": np.zeros(0), "reason": []})
        return events, gifts

    monkeypatch.setattr(generator, "simulate_evidence", no_evidence)
    generate(config, tmp_path / "without" / "raw", tmp_path / "without" / "truth")
    for name, table in TABLES.items():
        if name in ("credit_events", "small_gifts") or table.fed_back:
            continue
        for month in config.simulated_names if table.monthly else [None]:
            a = pd.read_parquet(partition_path(tmp_path / "with" / "raw", name, "GD", month))
            b = pd.read_parquet(partition_path(tmp_path / "without" / "raw", name, "GD", month))
            pd.testing.assert_frame_equal(a, b, obj=f"{name} {month}")
    for kind in ("labels", "oracle"):
        a = pd.read_parquet(tmp_path / "with" / "truth" / kind / "GD.parquet")
        b = pd.read_parquet(tmp_path / "without" / "truth" / kind / "GD.parquet")
        same = [c for c in a.columns if c != "credit_bad_event"]
        pd.testing.assert_frame_equal(a[same], b[same], obj=kind)


def test_a_province_file_defines_the_credit_outcome_training_reads(tiny_world, tmp_path):
    """``credit_outcome:`` in a province file: training's labels follow it, from the raw events."""
    from features.outcomes import OUTCOME_COLUMN, CreditOutcome
    from training.data import load_labels

    settings = tiny_world.settings.model_copy(update={"provinces_dir": tmp_path})
    default = load_labels(settings, "GD")
    (tmp_path / "GD.yaml").write_text(
        "province: GD\ncredit_outcome:\n  events: [arrears_written_off]\n  horizon_months: 1\n"
    )
    own = load_labels(settings, "GD")
    months = sorted(own["month"].unique())
    matured = own.groupby("month")[OUTCOME_COLUMN].apply(lambda s: s.notna().all())
    assert matured.tolist() == [True] * (len(months) - 1) + [False]  # one month ahead: all but the last
    assert default.groupby("month")[OUTCOME_COLUMN].apply(lambda s: s.notna().any()).sum() == len(months) - 3
    first = months[0]  # matured under both: one event type over one month counts fewer bad customers
    assert (
        own.loc[own["month"] == first, OUTCOME_COLUMN].sum()
        < default.loc[default["month"] == first, OUTCOME_COLUMN].sum()
    )
    raw = tiny_world.settings.raw_dir
    events = pd.concat(
        [pd.read_parquet(p) for p in sorted((raw / "credit_events").glob("province=GD/month=*/*.parquet"))]
    )
    expected = credit_bad_event(
        own, events, months[-1], CreditOutcome(events=("arrears_written_off",), horizon_months=1)
    )
    np.testing.assert_array_equal(own[OUTCOME_COLUMN].to_numpy(), expected.to_numpy())
