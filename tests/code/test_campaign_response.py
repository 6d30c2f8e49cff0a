"""A campaign's response report on small hand-made plans and answers; the world's response truth
against its own simulation."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.indicators import CHANNELS
from features.feedback import parse_events
from features.responses import response_truth, simulate_responses
from serving.campaign_response import attempts, best_frequency, due_for_wave, measure, uplift

START = dt.date(2026, 7, 1)


def plan(n: int, contacts: int = 0, waves: int = 2) -> pd.DataFrame:
    columns = {"msisdn": [f"1380000{i:04d}" for i in range(n)], "contacts_3m": [contacts] * n}
    for k in range(1, waves + 1):
        columns[f"wave_{k}_channel"] = [CHANNELS[k - 1]] * n
        columns[f"wave_{k}_date"] = [START + dt.timedelta(days=7 * (k - 1))] * n
    return pd.DataFrame(columns)


def events(*rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"type": t, "msisdn": m, "wave": w, "outcome": o, "time": pd.Timestamp(START), "channel": None}
            for t, m, w, o in rows
        ]
    )


def test_uplift_interval_holds_the_difference_and_narrows_with_more_customers():
    small = uplift(30, 100, 10, 100)
    large = uplift(300, 1000, 100, 1000)
    for u in (small, large):
        assert u["uplift"] == pytest.approx(0.2)
        assert u["low"] < 0.2 < u["high"]
    assert large["high"] - large["low"] < small["high"] - small["low"]
    assert uplift(5, 10, 0, 0)["uplift"] is None  # no control group: no uplift claimed


def test_a_closing_answer_ends_the_waves_and_a_future_wave_is_not_counted():
    p = plan(3, contacts=2)
    answers = events(
        ("campaign_contact", "13800000000", 1, "declined"),  # closed after wave 1
        ("campaign_contact", "13800000001", 1, "reached"),  # no decision: wave 2 follows
    )
    made = attempts(p, answers, as_of=START + dt.timedelta(days=7))
    waves = made.groupby("msisdn")["wave"].apply(list).to_dict()
    assert waves == {"13800000000": [1], "13800000001": [1, 2], "13800000002": [1, 2]}
    assert made.loc[made["msisdn"] == "13800000002", "outcome"].eq("no answer").all()
    assert made["contact_number"].tolist() == [3, 3, 3, 4, 4]
    assert set(attempts(p, answers, as_of=START)["wave"]) == {1}  # wave 2 is not due yet


def test_the_best_frequency_is_the_last_contact_that_still_pays():
    table = pd.DataFrame(
        {
            "contact_number": [1, 2, 3, 4],
            "attempts": [100, 100, 100, 100],
            "acceptance_rate": [0.20, 0.15, 0.10, 0.05],
            "objection_rate": [0.01, 0.03, 0.04, 0.03],
        }
    )
    assert best_frequency(table) == 2  # 0.10 - 3 x 0.04 < 0 at the third
    assert best_frequency(table.assign(attempts=[10, 100, 100, 100])) == 2  # the first is not read
    assert best_frequency(table.assign(attempts=[100, 100, 10, 100])) == 2  # nor the third: the 4th stops
    assert best_frequency(table.assign(attempts=10)) is None
    assert best_frequency(table.assign(objection_rate=0.2)) is None


def test_the_report_counts_takes_from_either_event_and_both_groups():
    contacted, control = plan(4), plan(2).assign(msisdn=["13900000000", "13900000001"])
    answers = events(
        ("campaign_contact", "13800000000", 1, "accepted"),
        ("offer_taken", "13800000001", None, None),
        ("offer_taken", "13900000000", None, None),
    )
    report = measure(contacted, control, answers, START + dt.timedelta(days=30))
    o = report["overall"]
    assert (o["took_contacted"], o["contacted"], o["took_control"], o["control"]) == (2, 4, 1, 2)
    assert o["uplift"] == pytest.approx(0.0)
    wave1 = report["by_wave"].set_index("wave").loc[1]
    assert (wave1["attempts"], wave1["accepted"], wave1["reached"]) == (4, 1, 1)


def _oracle(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(len(CHANNELS)), n)
    frame = pd.DataFrame({f"p_channel_{c}": p[:, k] for k, c in enumerate(CHANNELS)})
    frame["churn_probability"] = rng.beta(1, 30, n)
    frame["msisdn"] = [f"1380000{i:04d}" for i in range(n)]
    return frame.set_index("msisdn")


def test_the_simulated_answers_follow_the_closed_form_truth_and_are_valid_feedback():
    n = 6000
    contacted = plan(n, contacts=1, waves=3)
    contacted["msisdn"] = [f"1380000{i:04d}" for i in range(n)]
    oracle = _oracle(n)
    truth = response_truth(contacted, oracle, "retention", waves=3)
    assert (truth["uplift"] > 0).all() and (truth["p_take_contacted"] <= 1).all()
    made = simulate_responses("summer", "GD", "retention", contacted, contacted.iloc[:0], oracle, 3, seed=4)
    parsed = parse_events(made)  # every simulated answer is a valid feedback event
    took = {e.msisdn for e in parsed if e.type == "offer_taken"}
    assert len(took) / n == pytest.approx(truth["p_take_contacted"].mean(), abs=0.02)
    # channels the customer favours answer more: the truth's acceptance rises with p_channel
    high = oracle["p_channel_" + CHANNELS[0]] > 0.4
    assert truth.loc[high.to_numpy(), "uplift"].mean() > truth.loc[~high.to_numpy(), "uplift"].mean()


def test_a_later_waves_list_holds_only_customers_without_a_closing_answer():
    contacted = plan(4, waves=3)
    answers = events(
        ("campaign_contact", "13800000000", 1, "opted_out"),
        ("campaign_contact", "13800000001", 1, "reached"),  # reached, undecided: still due
        ("offer_taken", "13800000002", None, None),  # took it at a hall meanwhile
    )
    assert due_for_wave(contacted, answers, 2)["msisdn"].tolist() == ["13800000001", "13800000003"]
    assert len(due_for_wave(contacted, answers, 1)) == 3  # wave 1: all but the one who took it already
    with pytest.raises(ValueError, match="waves 1 to 3"):
        due_for_wave(contacted, answers, 4)
