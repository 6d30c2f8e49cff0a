"""Preparing by itself: one prepare at a time, no request lost; the told class's TreeSHAP alone."""

from __future__ import annotations

import numpy as np
import pytest

from core.settings import Settings
from serving.answers import score_frame
from serving.autoprepare import prepare_lock, run_requested, start_background_prepare
from serving.champions import load_champions
from serving.online import OnlineFeatures
from serving.prepared import snapshot_customers
from training.explain import reasons


def test_no_background_prepare_when_turned_off(tmp_path):
    assert start_background_prepare(Settings(workdir=tmp_path, auto_prepare=False), "test") is None
    assert not (tmp_path / "serving").exists()


def test_a_request_made_while_preparing_runs_once_more(tmp_path):
    settings = Settings(workdir=tmp_path)
    runs = []

    def prepare():
        runs.append(len(runs))
        if len(runs) == 1:  # a materialization while the first prepare runs
            (tmp_path / "serving" / "prepare" / "requested").write_text("another")

    assert run_requested(settings, prepare) == 2 and runs == [0, 1]
    assert run_requested(settings, prepare) == 1  # nothing new asked: one run (it skips what is current)


def test_a_second_prepare_leaves_its_request_to_the_one_running(tmp_path):
    settings = Settings(workdir=tmp_path)
    with prepare_lock(settings) as held:
        assert held
        assert run_requested(settings, lambda: pytest.fail("two prepares at once")) == 0
        with prepare_lock(settings, wait=False) as second:
            assert not second


@pytest.fixture(scope="module")
def gd(trained_world):
    models = load_champions(trained_world.settings).for_province("GD")
    numbers = snapshot_customers(trained_world.settings)["GD"][:400]
    features = OnlineFeatures(trained_world.settings).fetch(numbers)
    return models, features.take([k for k, known in enumerate(features.known()) if known])


def test_told_class_contributions_are_the_whole_models_bit_for_bit(gd):
    models, features = gd
    model = models.models["channel_preference"]
    x = models.encoder.model_input("channel_preference", models.encoder.matrix(features))
    p = model.serve(x)
    told = p.argmax(axis=1)
    assert len(set(told)) > 1  # several classes' boosters exercised
    whole = model.serve_contributions(x)  # (n, classes, features + 1)
    mine = model.serve_told_contributions(x, p)
    assert mine.shape == (len(x), whole.shape[2])
    assert np.array_equal(mine[:, :-1], whole[np.arange(len(x)), told, :-1])


def test_answers_with_reasons_from_the_told_class_equal_the_whole_models(gd):
    models, features = gd
    answers = score_frame(models, features)
    model = models.models["channel_preference"]
    x = models.encoder.model_input("channel_preference", models.encoder.matrix(features))
    whole = reasons(model, features, contributions=model.serve_contributions(x), probabilities=model.serve(x))
    assert [a["channel_preference"]["reasons"] for a in answers] == whole
    assert all(len(a["channel_preference"]["reasons"]) == 3 for a in answers)
