"""The specification's credit scorecard: weighting methods on hand-computed examples, screening,
normalisation, cut-offs, the two error rates as the specification defines them, optimisation and
the JSON round trip. Fast: small synthetic frames, no world."""

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from core import indicators as lib
from core.errors import ConfigurationError
from training import scorecard as sc

MANDATORY = [i.id for i in lib.credit_indicators("mandatory")]


def _customers(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The nine mandatory indicators and two optional ones, independent of each other."""
    rng = np.random.default_rng(seed)
    satisfaction = rng.uniform(1, 5, n)
    satisfaction[rng.random(n) < 0.7] = np.nan  # most customers answered no survey
    return pd.DataFrame(
        {
            "customer_category": rng.choice(lib.BY_ID["customer_category"].codes, n),
            "brand": rng.choice(lib.BY_ID["brand"].codes, n),
            "payment_method": rng.choice(lib.BY_ID["payment_method"].codes, n),
            "tenure_months": rng.integers(0, 120, n),
            "monthly_consumption": rng.lognormal(4, 0.8, n),
            "arrears_months_12m": np.minimum(rng.poisson(0.8, n), 12),
            "complaint_count_3m": rng.poisson(0.3, n),
            "complaint_satisfaction": satisfaction,
            "refund_count_12m": rng.poisson(0.2, n),
            "business_dependence": rng.integers(1, 8, n),
            "influence": rng.poisson(20, n),
        }
    )


# -- weighting methods ---------------------------------------------------------------------------


def test_ahp_weights_of_a_3x3_matrix_by_hand():
    # a12 = 2, a13 = 4, a23 = 1 (a consistent a23 would be 2).
    # For n = 3 the principal eigenvector equals the rows' geometric means:
    #   (1·2·4)^(1/3) = 2, (1/2·1·1)^(1/3) = 0.793701, (1/4·1·1)^(1/3) = 0.629961; sum 3.423661
    #   w = (2, 0.793701, 0.629961)/3.423661 = (0.584170, 0.231828, 0.184002)
    # and λmax = 1 + c + 1/c with c = (a12·a23/a13)^(1/3) = 0.5^(1/3) = 0.793701:
    #   λmax = 1 + 0.793701 + 1.259921 = 3.053622; CI = 0.053622/2 = 0.026811; CR = CI/0.58 = 0.046225
    result = sc.ahp_weights(sc.comparison_matrix(3, [2, 4, 1]))
    assert result.weights == pytest.approx([0.584170, 0.231828, 0.184002], abs=1e-6)
    assert result.lambda_max == pytest.approx(3.053622, abs=1e-6)
    assert result.consistency_index == pytest.approx(0.026811, abs=1e-6)
    assert result.random_index == 0.58
    assert result.consistency_ratio == pytest.approx(0.046225, abs=1e-6)


def test_ahp_weights_of_consistent_judgements_are_the_implied_ratios():
    # a12 = 2, a13 = 6, a23 = 3: w = (0.6, 0.3, 0.1) exactly, λmax = n, CR = 0
    result = sc.ahp_weights(sc.comparison_matrix(3, [2, 6, 3]))
    assert result.weights == pytest.approx([0.6, 0.3, 0.1])
    assert result.consistency_ratio == pytest.approx(0.0, abs=1e-9)


def test_ahp_refuses_a_consistency_ratio_above_one_tenth_naming_it():
    # a12 = 3, a13 = 1/3, a23 = 3: c = (3·3/(1/3))^(1/3) = 3, λmax = 1 + 3 + 1/3 = 4.333333,
    # CI = 0.666667, CR = 0.666667/0.58 = 1.149
    with pytest.raises(sc.InconsistentJudgements, match=r"CR = 1\.149 > 0\.1"):
        sc.ahp_weights(sc.comparison_matrix(3, [3, 1 / 3, 3]))
    # in a configuration (a province file section) it is refused before any data is read
    with pytest.raises(ValidationError, match=r"CR = 1\.149"):
        sc.ScorecardConfig(
            method="ahp",
            ahp={"items": ["profile", "billing_payment", "complaints_service"], "judgements": [3, "1/3", 3]},
        )


def test_ahp_names_the_most_inconsistent_judgement_and_its_consistent_value():
    # w = (8, 4, 2, 1)/15 would give a12 = 2, a13 = 4, a14 = 8, a23 = 2, a24 = 4, a34 = 2;
    # the expert reversed a14 (1/8 instead of 8)
    matrix = sc.comparison_matrix(4, [2, 4, 1 / 8, 2, 4, 2])
    with pytest.raises(sc.InconsistentJudgements) as err:
        sc.ahp_weights(matrix, ["a", "b", "c", "d"])
    assert "a vs d = 1/8" in str(err.value)
    assert "imply about" in str(err.value)


def test_entropy_weights_by_hand():
    # 4 customers, 3 indicators, e_j = -Σ p ln p / ln 4, w ∝ 1 - e_j:
    #   x1 = (0, .5, .5, 1): p = (0, .25, .25, .5), -Σ p ln p = .5·1.386294 + .5·0.693147 = 1.039721,
    #        e1 = 1.039721/1.386294 = 0.75, d1 = 0.25
    #   x2 = (1, 1, 0, 0):   p = (.5, .5, 0, 0), -Σ p ln p = ln 2, e2 = 0.5, d2 = 0.5
    #   x3 = (1, 1, 1, 1):   uniform, e3 = 1, d3 = 0
    #   w = (0.25, 0.5, 0)/0.75 = (1/3, 2/3, 0)
    x = np.array([[0, 1, 1], [0.5, 1, 1], [0.5, 0, 1], [1, 0, 1]])
    assert sc.entropy_weights(x) == pytest.approx([1 / 3, 2 / 3, 0.0])


def test_critic_weights_by_hand():
    # x1 = (0, 1, 0, 1), x2 = (0, 1, 1, 1), x3 = (0, 0, 1, 1)
    #   σ1 = 0.5, σ2 = √(.75·.25) = 0.433013, σ3 = 0.5
    #   r12 = (E[x1x2] - .5·.75)/(σ1σ2) = (.5 - .375)/0.216506 = 0.577350, r13 = 0, r23 = 0.577350
    #   C1 = 0.5·((1 - .577350) + (1 - 0)) = 0.711325
    #   C2 = 0.433013·((1 - .577350) + (1 - .577350)) = 0.366025
    #   C3 = 0.5·((1 - 0) + (1 - .577350)) = 0.711325;  sum 1.788675
    #   w = (0.711325, 0.366025, 0.711325)/1.788675 = (0.397683, 0.204635, 0.397683):
    #   x2, saying half of what the others say, weighs least
    x = np.array([[0, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=float)
    assert sc.critic_weights(x) == pytest.approx([0.397683, 0.204635, 0.397683], abs=1e-6)


def test_combined_weights_blend_expert_and_objective():
    # geometric: √(.5·.8) = .632456, √(.5·.2) = .316228 -> (2/3, 1/3); arithmetic: (.65, .35)
    assert sc.combined_weights([0.5, 0.5], [0.8, 0.2]) == pytest.approx([2 / 3, 1 / 3])
    assert sc.combined_weights([0.5, 0.5], [0.8, 0.2], how="arithmetic") == pytest.approx([0.65, 0.35])


# -- configuration ---------------------------------------------------------------------------------


def test_configuration_refuses_unknown_indicators_wrong_sizes_and_judgements_off_the_scale():
    with pytest.raises(
        ValidationError, match=r"unknown indicator 'tenure_month' \(did you mean 'tenure_months'\?\)"
    ):
        sc.ScorecardConfig(directions={"tenure_month": 1})
    with pytest.raises(ValidationError, match="3 AHP items need 3 judgements"):
        sc.ScorecardConfig(
            method="ahp", ahp={"items": ["profile", "usage", "billing_payment"], "judgements": [2]}
        )
    with pytest.raises(ValidationError, match="outside Saaty's scale"):
        sc.ScorecardConfig(method="ahp", ahp={"items": ["profile", "usage"], "judgements": [12]})
    with pytest.raises(ValidationError, match="needs the experts' 'ahp' judgements"):
        sc.ScorecardConfig(method="ahp")
    with pytest.raises(ValidationError, match="library says 'arrears_months_12m' has credit_direction -1"):
        sc.ScorecardConfig(directions={"arrears_months_12m": 1})
    with pytest.raises(ValidationError, match="missing: vip_diamond"):
        sc.ScorecardConfig(
            category_scores={
                "customer_category": {"individual": 0, "group_member": 0.3, "vip_silver": 0.5, "vip_gold": 1}
            }
        )
    with pytest.raises(ValidationError, match="four increasing scores"):
        sc.ScorecardConfig(cutoff_method="given", cutoffs=(20, 10, 60, 80))


# -- screening -------------------------------------------------------------------------------------


def test_screening_drops_a_low_coverage_and_a_redundant_optional_indicator_and_keeps_a_mandatory_one():
    frame = _customers()
    frame.loc[frame.index[: len(frame) // 2], "influence"] = np.nan  # optional, 50% coverage
    frame["refund_amount_12m"] = frame["refund_count_12m"] * 30.0  # optional, says what the count says
    config = sc.ScorecardConfig()
    report = sc.screen_indicators(
        frame, [*MANDATORY, "refund_amount_12m", "influence", "business_dependence"], config
    )

    assert not report.loc["influence", "kept"] and report.loc["influence", "dropped_at"] == "coverage"
    assert "coverage 50.0% < 80%" in report.loc["influence", "reasons"]
    assert (
        not report.loc["refund_amount_12m", "kept"]
        and report.loc["refund_amount_12m", "dropped_at"] == "redundancy"
    )
    assert report.loc["refund_amount_12m", "redundant_with"] == "refund_count_12m"
    # complaint satisfaction has 30% coverage but is mandatory: reported, kept
    assert report.loc["complaint_satisfaction", "coverage"] < 0.8
    assert report.loc["complaint_satisfaction", "kept"]
    assert "kept: mandatory" in report.loc["complaint_satisfaction", "reasons"]
    assert report.loc["business_dependence", "kept"]
    assert report.loc[MANDATORY, "kept"].all()
    assert "stability: skipped" in report.loc["tenure_months", "reasons"]


def test_screening_measures_stability_between_periods_and_drops_an_unstable_optional_indicator():
    earlier, later = _customers(seed=1), _customers(seed=2)
    later["influence"] = later["influence"] + 1  # a small shift
    # nine customers in ten suddenly use every service
    later["business_dependence"] = np.where(np.arange(len(later)) % 10 == 0, 1, 7)
    report = sc.screen_indicators(
        later, [*MANDATORY, "business_dependence", "influence"], sc.ScorecardConfig(), previous=earlier
    )
    assert report.loc["business_dependence", "psi"] > 0.25 and not report.loc["business_dependence", "kept"]
    assert report.loc["influence", "psi"] < 0.25 and report.loc["influence", "kept"]
    assert sc.population_stability_index(earlier["tenure_months"], earlier["tenure_months"]) == pytest.approx(
        0
    )


# -- normalisation ---------------------------------------------------------------------------------


def test_normalisation_turns_each_indicator_so_that_higher_is_better_credit():
    frame = _customers()
    config = sc.ScorecardConfig()
    tenure = sc.fit_normaliser(frame["tenure_months"], "tenure_months", config, +1)
    arrears = sc.fit_normaliser(frame["arrears_months_12m"], "arrears_months_12m", config, -1)
    assert tenure([0, 60, 119]).tolist() == sorted(tenure([0, 60, 119]).tolist())
    assert tenure([0])[0] == 0.0 and tenure([10_000])[0] == 1.0  # clipped to [0, 1]
    assert arrears([0])[0] == 1.0 and arrears([0, 1, 3]).tolist() == sorted(arrears([0, 1, 3]), reverse=True)
    brand = sc.fit_normaliser(frame["brand"], "brand", config, 1)
    assert brand(["gotone"])[0] > brand(["mzone"])[0] > brand(["easyown"])[0]
    # missing: the typical customer's value, neither raising nor lowering the score
    assert tenure([np.nan])[0] == pytest.approx(np.median(tenure(frame["tenure_months"])))

    # the directions: the library's, else the outcome's, else the configuration's, else refused
    assert sc.credit_direction("tenure_months", config) == (1, "library credit_direction")
    assert sc.credit_direction("arrears_months_12m", config)[0] == -1
    assert sc.credit_direction("number_level", config, outcome_correlation=-0.3)[0] == -1
    assert sc.credit_direction("number_level", sc.ScorecardConfig(directions={"number_level": 1}))[0] == 1
    with pytest.raises(
        ConfigurationError,
        match=r"'number_level' \(号码级别, Number level\).*directions: \{number_level: 1\}",
    ):
        sc.credit_direction("number_level", config)


def test_an_indicator_of_unknown_direction_is_dropped_by_default_and_refused_when_listed():
    frame = _customers()
    frame["number_level"] = np.random.default_rng(3).integers(0, 5, len(frame))
    default = sc.fit_scorecard(frame)  # the group's default set: nothing says which way it points
    assert "number_level" not in default.weights
    assert default.screening.loc["number_level", "dropped_at"] == "direction"
    listed = [*sc._mandatory_ids(), "number_level"]
    with pytest.raises(ConfigurationError, match="number_level"):
        sc.fit_scorecard(frame, sc.ScorecardConfig(indicators=listed))
    card = sc.fit_scorecard(frame, sc.ScorecardConfig(directions={"number_level": 1}))
    assert card.details["directions"]["number_level"] == "+1 (configuration directions)"


# -- cut-offs --------------------------------------------------------------------------------------


def test_cutoffs_from_target_shares_give_those_shares_on_a_uniform_score():
    score = np.linspace(0, 100, 100_001)
    cutoffs = sc.cutoffs_from_shares(score, sc.DEFAULT_GRADE_SHARES)
    assert cutoffs == pytest.approx([5, 20, 70, 90], abs=1e-6)
    shares = np.bincount(sc.grades_of(score, cutoffs), minlength=6)[1:] / len(score)
    assert shares == pytest.approx(sc.DEFAULT_GRADE_SHARES, abs=1e-4)
    other = (0.1, 0.2, 0.4, 0.2, 0.1)
    shares = np.bincount(sc.grades_of(score, sc.cutoffs_from_shares(score, other)), minlength=6)[1:] / len(
        score
    )
    assert shares == pytest.approx(other, abs=1e-4)


def test_cutoffs_optimised_against_true_grades_do_not_lose_kappa_against_the_share_cutoffs():
    rng = np.random.default_rng(5)
    score = rng.uniform(0, 100, 5000)
    true = sc.grades_of(score + rng.normal(0, 8, len(score)), [10, 30, 60, 85])
    start = sc.cutoffs_from_shares(score, np.bincount(true, minlength=6)[1:] / len(true))
    tuned = sc.cutoffs_for_kappa(score, true)
    kappa = sc.test_report(true, sc.grades_of(score, tuned))["quadratic_weighted_kappa"]
    assert kappa >= sc.test_report(true, sc.grades_of(score, start))["quadratic_weighted_kappa"]
    assert list(tuned) == sorted(tuned)


# -- the test: the specification's two error rates -----------------------------------------------


def test_the_two_error_rates_on_a_hand_built_confusion_table():
    # rows: true grade 1..5; columns: graded 1..5
    table = np.array(
        [
            [10, 5, 3, 1, 1],  # true 1 (信用极差): 2 graded high (4-5)
            [4, 20, 10, 4, 2],  # true 2 (信用较差): 6 graded high
            [2, 8, 60, 20, 10],  # true 3 (信用一般, 中等水平): 10 graded low (1-2)
            [1, 2, 10, 30, 7],  # true 4: 3 graded low
            [0, 1, 4, 10, 15],  # true 5: 1 graded low
        ]
    )
    true = np.repeat(np.repeat(np.arange(1, 6), 5), table.ravel())
    graded = np.repeat(np.tile(np.arange(1, 6), 5), table.ravel())
    # 漏判率: truly poor (true 1-2: 20 + 40 = 60) graded into the high end (4-5): (2 + 6)/60
    assert sc.missed_judgement_rate(true, graded) == pytest.approx(8 / 60)
    # 误判率: normal, of the middle level (true 3: 100) graded into the low end (1-2): 10/100
    assert sc.misjudgement_rate(true, graded) == pytest.approx(10 / 100)
    report = sc.test_report(true, graded)
    assert report["confusion"] == table.tolist()
    assert report["good_graded_low_rate"] == pytest.approx(4 / 80)
    # what the supervised model counts as misjudgement (true 3-5 graded 1-2) differs: 14/180
    assert report["average_or_better_graded_low_rate"] == pytest.approx(14 / 180)
    from sklearn.metrics import cohen_kappa_score

    assert report["quadratic_weighted_kappa"] == pytest.approx(
        cohen_kappa_score(true, graded, weights="quadratic")
    )
    assert np.isnan(sc.misjudgement_rate([1, 2, 4], [1, 1, 1]))  # nobody of average credit


# -- optimisation ----------------------------------------------------------------------------------


def test_optimisation_raises_agreement_with_an_outcome_one_indicator_drives_and_stays_in_bounds():
    rng = np.random.default_rng(7)
    z = rng.uniform(0, 1, (3000, 3))
    goodness = z[:, 0] + 0.2 * rng.normal(size=len(z))  # the first indicator drives the outcome
    prior = np.array([1 / 3, 1 / 3, 1 / 3])
    w, record = sc.optimise_weights(z, goodness, prior, max_change=0.5)
    assert record["status"] == "optimised"
    assert record["after"]["spearman"] > record["before"]["spearman"] + 0.05
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w >= prior * 0.5 - 1e-9) and np.all(w <= prior * 1.5 + 1e-9)
    assert w[0] == pytest.approx(0.5, abs=1e-6)  # pushed to its bound


def test_fit_with_a_bad_credit_event_optimises_the_weights_and_without_outcome_records_it_skipped():
    frame = _customers(4000, seed=11)
    rng = np.random.default_rng(12)
    # bad credit events follow arrears
    bad = (frame["arrears_months_12m"] + rng.normal(0, 0.7, len(frame)) >= 2).astype(int)
    plain = sc.fit_scorecard(frame)
    assert plain.details["optimisation"]["status"] == "skipped (no outcome)"
    assert plain.details["test"]["status"] == "skipped (no outcome)"
    assert plain.method == "critic" and sum(plain.weights.values()) == pytest.approx(1.0)

    card = sc.fit_scorecard(frame, outcome=bad, outcome_kind="bad_event")
    record = card.details["optimisation"]
    assert record["status"] == "optimised" and record["after"]["auc"] > record["before"]["auc"]
    for i, w in card.weights.items():
        prior = card.prior_weights[i]
        assert prior * 0.5 - 1e-6 <= w <= prior * 1.5 + 1e-6  # SLSQP's tolerance, renormalised after
    assert card.weights["arrears_months_12m"] > card.prior_weights["arrears_months_12m"]
    assert card.details["test"]["auc"] > 0.5
    # the uncorrelated optional indicators were screened out by the outcome step
    assert card.screening.loc["influence", "dropped_at"] == "outcome"
    assert set(MANDATORY) <= set(card.weights)


def test_fit_by_ahp_over_subjects_splits_each_subject_weight_among_its_indicators():
    frame = _customers()
    config = sc.ScorecardConfig(
        method="ahp",
        ahp={
            # consistent judgements implying weights (4, 4, 2, 1)/11
            "items": ["complaints_service", "billing_payment", "profile", "usage"],
            "judgements": [1, 2, 4, 2, 4, 2],
        },
    )
    card = sc.fit_scorecard(frame, config)
    items = card.details["weighting"]["item_weights"]
    assert items["complaints_service"] == pytest.approx(items["billing_payment"])
    assert items["complaints_service"] == pytest.approx(2 * items["profile"])
    members = card.details["weighting"]["members"]["profile"]
    assert set(members) == {"customer_category", "brand", "payment_method", "tenure_months"}
    assert sum(card.weights[i] for i in members) == pytest.approx(items["profile"])
    assert card.weights["brand"] == pytest.approx(items["profile"] / 4)


# -- the scorecard ---------------------------------------------------------------------------------


def test_round_trip_through_json_gives_identical_scores_grades_and_reasons():
    frame = _customers(3000, seed=21)
    true = sc.grades_of(
        -frame["arrears_months_12m"].to_numpy() + np.random.default_rng(1).normal(0, 0.5, len(frame)),
        [-3, -2, -1, 0],
    )
    card = sc.fit_scorecard(frame, sc.ScorecardConfig(cutoff_method="outcome"), outcome=pd.Series(true))
    assert card.details["cutoffs"] == "optimised for quadratic kappa"
    assert set(card.details["test"]) >= {
        "missed_judgement_rate",
        "misjudgement_rate",
        "quadratic_weighted_kappa",
    }
    text = json.dumps(card.to_dict(), ensure_ascii=False, allow_nan=False)
    again = sc.Scorecard.from_dict(json.loads(text))
    np.testing.assert_array_equal(again.grade(frame), card.grade(frame))
    np.testing.assert_allclose(again.score(frame), card.score(frame))
    assert again.reasons(frame.head(5)) == card.reasons(frame.head(5))
    assert list(again.screening.index) == list(card.screening.index)
    assert again.cutoffs == card.cutoffs and again.weights == card.weights


def test_score_grade_and_reasons_name_what_pulled_a_customer_down():
    frame = _customers(2000, seed=31)
    card = sc.fit_scorecard(frame, sc.ScorecardConfig(cutoff_method="given", cutoffs=(20, 40, 60, 80)))
    score, grade = card.score(frame), card.grade(frame)
    assert score.min() >= 0 and score.max() <= 100
    assert set(np.unique(grade)) <= {1, 2, 3, 4, 5}
    assert np.array_equal(grade, sc.grades_of(score, [20, 40, 60, 80]))
    worst = frame.iloc[[0]].copy()
    worst["arrears_months_12m"] = 12
    reasons = card.reasons(worst, top=3)[0]
    assert "arrears_months_12m" in [r["indicator"] for r in reasons]
    lost = [r["points_lost"] for r in reasons]
    assert lost == sorted(lost, reverse=True)
    assert reasons[0]["name_zh"] and reasons[0]["name_en"]


def test_a_frame_without_a_mandatory_indicator_is_refused():
    frame = _customers().drop(columns=["refund_count_12m"])
    with pytest.raises(ConfigurationError, match="nine mandatory indicators.*refund_count_12m"):
        sc.fit_scorecard(frame)
