"""The credit grade learned from the credit outcome: risk bands at the group's shares, judged on
the outcome, monotone constraints turned for a risk."""

import numpy as np
import pytest

from core.kinds import RiskGrade, predicted_grade
from core.scorecard_config import DEFAULT_GRADE_SHARES
from core.tasks import CREDIT_GRADES, TASKS


def test_risk_bands_give_the_group_shares_riskiest_first():
    kind = RiskGrade(CREDIT_GRADES, DEFAULT_GRADE_SHARES)
    risk = np.linspace(0.0, 1.0, 100_001)
    calibration = kind.fit_calibration(risk, np.zeros_like(risk), np.zeros_like(risk))
    grades = predicted_grade(kind.calibrate(risk, calibration))
    shares = [float((grades == g).mean()) for g in (1, 2, 3, 4, 5)]
    assert shares == pytest.approx(DEFAULT_GRADE_SHARES, abs=1e-3)
    assert grades[-1] == 1 and grades[0] == 5  # the highest risk is the worst grade


def test_outcome_metrics_on_a_hand_built_table():
    kind = RiskGrade(CREDIT_GRADES, DEFAULT_GRADE_SHARES)
    graded = np.array([1, 1, 2, 3, 3, 3, 4, 5, 5, 5])
    bad = np.array([1, 0, 1, 0, 1, 0, 0, 0, 1, 0])
    p = np.eye(5)[graded - 1]
    m = kind.metrics(bad, p)
    assert m["low_grade_event_rate"] == pytest.approx(2 / 3)  # grades 1-2: 2 of 3
    assert m["high_grade_event_rate"] == pytest.approx(1 / 4)  # grades 4-5: 1 of 4
    assert m["missed_judgement_rate"] == pytest.approx(1 / 4)  # 4 bad customers, one graded 5
    assert m["event_rate"] == pytest.approx(0.4)
    # AUC of the grade for "no bad event": pairs (good, bad) where the good one has the higher grade,
    # ties counted half: by hand 15.5 of 24
    assert m["grade_auc"] == pytest.approx(15.5 / 24)


def test_the_credit_model_is_monotone_against_risk():
    t = TASKS["credit_grade"]
    constraints = dict(zip(t.feature_names, t.monotone_constraints()))
    assert constraints["arrears_months_12m"] == 1  # more arrears, more risk
    assert constraints["tenure_months"] == -1 and constraints["black_list_flag"] == 1
    assert constraints["customer_category"] == 0  # a category carries none
