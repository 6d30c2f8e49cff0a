"""The credit specification's scorecard as a served model: a province that brings its indicators and
no labels at all gets a credit grade, registered, logged and answered like any champion."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from core.settings import Settings
from tests.byod_data import PROVINCE_FILE, write_case
from training.model import ScorecardModel

AHP_SECTION = """\
scorecard:
  method: ahp
  ahp:
    items: [profile, billing_payment, complaints_service]
    judgements: [1/2, 1, 2]
"""


@pytest.fixture(scope="module")
def unlabelled(tiny_world, tmp_path_factory):
    """Zhejiang's own data with every label column left out of the mapping, trained as `telcoml byod`
    trains it."""
    from telcoml.pipeline import bring_your_own_data

    root = tmp_path_factory.mktemp("unlabelled")
    settings = Settings(workdir=root / "work")
    settings.provinces_dir.mkdir(parents=True)
    (settings.provinces_dir / "ZJ.yaml").write_text(PROVINCE_FILE + AHP_SECTION)
    mapping = write_case(tiny_world, root / "zj")
    text = mapping.read_text()
    start = text.index("labels:")
    end = text.index("codes:")
    mapping.write_text(text[:start] + text[end:])  # no labels of any model
    run = bring_your_own_data(settings, mapping, train=True, trials=3)
    return settings, run


def test_a_province_without_labels_gets_a_registered_scorecard_champion(unlabelled):
    settings, run = unlabelled
    assert run.byod.models_labelled == [] and run.byod.credit_scorecard
    assert [(r.task, r.method) for r in run.training] == [("credit_grade", "scorecard")]
    result = run.training[0]
    assert result.promoted and "nothing to test it on" in result.gate_reason
    client = MlflowClient()
    version = client.get_model_version_by_alias("telcoml-credit_grade-zj", "champion")
    assert version.tags["method"] == "scorecard"
    logged = client.get_run(result.run_id)
    weights = {k: v for k, v in logged.data.metrics.items() if k.startswith("weight.")}
    assert sum(weights.values()) == pytest.approx(1.0)
    # the experts' judgements of the province file, with their consistency ratio
    assert logged.data.params["weighting"] == "ahp" and logged.data.metrics["ahp_consistency_ratio"] <= 0.1
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "scorecard")}
    assert {"scorecard/scorecard.json", "scorecard/screening.csv", "scorecard/scorecard.png"} <= artifacts


def test_the_served_scorecard_answers_with_its_grade_score_reasons_and_guidance(unlabelled):
    from serving.answers import score_frame
    from serving.champions import load_champions
    from training.data import snapshot_frame, snapshot_months

    settings, _ = unlabelled
    models = load_champions(settings).for_province("ZJ")
    model = models.models["credit_grade"]
    assert isinstance(model, ScorecardModel) and set(models.models) == {"credit_grade"}
    t = model.task
    month = snapshot_months(settings, "ZJ")[-1]
    frame = snapshot_frame(settings, t, month, "ZJ").head(200)
    answers = score_frame(models, frame)
    grades = np.array([a["credit_grade"]["code"] for a in answers])
    # served from the shared encoded matrix as the scorecard grades the indicators itself
    listed = pd.to_numeric(frame.get("black_list_flag"), errors="coerce").fillna(0).to_numpy() == 1
    expected = model.card.grade(frame)
    assert (grades[~listed] == expected[~listed]).all() and (grades[listed] <= 2).all()
    assert len(set(grades)) >= 3  # a spread of grades, not one
    for a in answers[:20]:
        block = a["credit_grade"]
        assert block["method"] == "scorecard" and 0 <= block["credit_score"] <= 100
        assert 1 + sum(block["credit_score"] >= c for c in model.card.cutoffs) == block["code"] or (
            block["code"] <= 2 and any(r.get("rule") for r in block["reasons"])
        )
        points = [r for r in block["reasons"] if r.get("rule") is None]
        assert points and all(r["indicator"] in model.card.weights for r in points)
        assert {g["topic"] for g in a["guidance"]} >= {"complaint_handling"}


def test_the_scorecard_reasons_add_up_to_its_score(unlabelled):
    """Contributions are score points against the typical customer: typical + Σ points = score."""
    from serving.champions import load_champions
    from training.data import snapshot_frame, snapshot_months

    settings, _ = unlabelled
    model = load_champions(settings).for_province("ZJ").models["credit_grade"]
    frame = snapshot_frame(settings, model.task, snapshot_months(settings, "ZJ")[-1], "ZJ").head(50)
    contributions = model.contributions(frame)
    assert contributions.sum(axis=1) == pytest.approx(model.raw(frame))
    assert model.raw(frame) == pytest.approx(model.card.score(frame))


def test_a_saved_scorecard_loads_as_the_same_model(unlabelled, tmp_path):
    from training.model import load_model

    settings, _ = unlabelled
    from serving.champions import load_champions

    model = load_champions(settings).for_province("ZJ").models["credit_grade"]
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert isinstance(again, ScorecardModel) and again.card.to_dict() == model.card.to_dict()
    assert json.loads((tmp_path / "m" / "task_model.json").read_text())["method"] == "scorecard"
    assert again.task.province == "ZJ" and again.task.feature_names == model.task.feature_names


def test_an_inconsistent_ahp_in_a_province_file_is_refused_naming_the_ratio(tmp_path):
    from core.errors import ConfigurationError
    from features.provinces import read_province

    path = tmp_path / "ZJ.yaml"
    # profile 3x billing, billing 3x complaints, yet complaints 3x profile: circular
    path.write_text(PROVINCE_FILE + AHP_SECTION.replace("[1/2, 1, 2]", "[3, 1/3, 3]"))
    with pytest.raises(ConfigurationError, match=r"consistency ratio CR = [0-9.]+ > 0.1"):
        read_province(path)
