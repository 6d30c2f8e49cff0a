"""The credit outcome from credit events, on hand-built frames; a province's override refused clearly."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigurationError
from features.evidence import bad_event_probability, credit_event_rate
from features.outcomes import DEFAULT_OUTCOME, CreditOutcome, credit_bad_event
from features.provinces import read_province

A, B, C = "13800000001", "13800000002", "13800000003"


def _events(*rows):
    return pd.DataFrame(rows, columns=["msisdn", "event_time", "event_type"]).assign(
        event_time=lambda f: pd.to_datetime(f["event_time"])
    )


def test_bad_within_the_horizon_good_when_matured_and_empty_when_not():
    snapshots = pd.DataFrame({"msisdn": [A, B, C, A, B], "month": ["2026-01"] * 3 + ["2026-03"] * 2})
    events = _events(
        (A, "2026-04-30 23:59:59", "refund_reversed"),  # the third month after January: counts
        (B, "2026-01-20 10:00:00", "complaint_unfounded"),  # the snapshot month itself: history, not outcome
        (B, "2026-05-02 08:00:00", "arrears_written_off"),  # the fourth month after January: too late
        (C, "2026-02-01 00:00:00", "black_listed"),
    )
    out = credit_bad_event(snapshots, events, data_end="2026-05")
    # January has matured (Feb-Apr are in the data); March has not (June is not)
    np.testing.assert_array_equal(out.to_numpy(), [1.0, 0.0, 1.0, np.nan, np.nan])
    assert out.name == "credit_bad_event" and list(out.index) == list(snapshots.index)
    assert DEFAULT_OUTCOME.horizon_months == 3 and len(DEFAULT_OUTCOME.events) == 5


def test_only_the_definitions_event_types_count_within_its_horizon():
    snapshots = pd.DataFrame({"msisdn": [A, B], "month": ["2026-01", "2026-01"]})
    events = _events((A, "2026-02-10", "complaint_unfounded"), (B, "2026-03-05", "double_refund"))
    narrow = CreditOutcome(events=("double_refund", "arrears_written_off"), horizon_months=1)
    # B's double refund is in the second month: outside a 1-month horizon; A's type does not count
    np.testing.assert_array_equal(credit_bad_event(snapshots, events, "2026-03", narrow), [0.0, 0.0])
    wider = CreditOutcome(events=("double_refund",), horizon_months=2)
    np.testing.assert_array_equal(credit_bad_event(snapshots, events, "2026-03", wider), [0.0, 1.0])
    # no events at all: every matured snapshot is good
    none = _events()
    np.testing.assert_array_equal(credit_bad_event(snapshots, none, "2026-06"), [0.0, 0.0])


def test_the_oracle_falls_with_the_score_and_knows_that_a_closed_line_has_no_evidence():
    score = np.array([-2.0, 0.5, 2.0, 4.5])
    p = bad_event_probability(score, np.zeros(4), 3)
    assert (np.diff(p) < 0).all() and (np.diff(credit_event_rate(score)) < 0).all()
    np.testing.assert_allclose(p, 1 - np.exp(-3 * credit_event_rate(score)))
    # a line certain to close after the snapshot month has no months to show evidence in
    np.testing.assert_allclose(bad_event_probability(score, np.ones(4), 3), 0.0, atol=1e-12)
    assert (bad_event_probability(score, np.full(4, 0.3), 3) < p).all()


def _province(tmp_path, body: str):
    path = tmp_path / "GD.yaml"
    path.write_text("province: GD\n" + textwrap.dedent(body).lstrip())
    return read_province(path)


def test_a_province_may_define_its_own_outcome(tmp_path):
    assert _province(tmp_path, "").credit_outcome == DEFAULT_OUTCOME
    own = _province(
        tmp_path,
        """
        credit_outcome:
          events: [arrears_written_off, black_listed]
          horizon_months: 6
        """,
    ).credit_outcome
    assert own.events == ("arrears_written_off", "black_listed") and own.horizon_months == 6


@pytest.mark.parametrize(
    "body, words",
    [
        ("credit_outcome:\n  events: [arrears_writen_off]\n", "did you mean 'arrears_written_off'"),
        ("credit_outcome:\n  events: []\n", "at least one credit event type"),
        ("credit_outcome:\n  events: [double_refund, double_refund]\n", "more than once: double_refund"),
        ("credit_outcome:\n  horizon_months: 13\n", "less than or equal to 12"),
        ("credit_outcome:\n  horizon_months: 0\n", "greater than or equal to 1"),
        ("credit_outcome:\n  horizon: 3\n", "horizon"),
    ],
)
def test_an_invalid_outcome_is_refused_naming_the_section(tmp_path, body, words):
    with pytest.raises(ConfigurationError) as err:
        _province(tmp_path, body)
    message = str(err.value)
    assert "credit_outcome" in message and words in message and "GD.yaml" in message
