"""What a study leaves in MLflow and Optuna: pruned trials ended as such, trials pointing to their runs,
the objective named."""

import mlflow
import optuna
from mlflow import MlflowClient

from core.tasks import task
from training.data import load_truth, make_dataset, time_split
from training.registry import configure_mlflow
from training.tune import XGBOOST_DEFAULTS, TuningBudget, suggest, tune


def _finished_trial(loss: float) -> optuna.trial.FrozenTrial:
    """A completed trial of XGBoost's defaults whose validation loss was ``loss`` at every report."""
    asked = optuna.create_study().ask()
    suggest(asked, small=True)  # the search space's distributions, as a small table's study has them
    return optuna.trial.create_trial(
        params=XGBOOST_DEFAULTS,
        distributions=asked.distributions,
        value=loss,
        intermediate_values={step: loss for step in range(0, 200, 10)},
    )


def test_a_pruned_trial_is_not_failed_and_every_trial_points_to_its_run(tiny_world, tmp_path):
    settings = tiny_world.settings
    t = task("churn")
    data = make_dataset(settings, t, time_split(sorted(load_truth(settings, "labels")["month"].unique()), 1))
    storage = f"sqlite:///{tmp_path}/optuna.db"
    # four earlier trials with an unreachable loss: the median pruner stops the next ones at round 20
    earlier = optuna.create_study(study_name="pruned", storage=storage, direction="minimize")
    for _ in range(4):
        earlier.add_trial(_finished_trial(1e-6))
    configure_mlflow(settings, t.experiment_name())
    with mlflow.start_run(run_name="study-pruned") as parent:
        study, _ = tune(t, data, TuningBudget(trials=2, max_rounds=200, seed=1, threads=1), storage, "pruned")

    ours = study.trials[4:]
    assert [tr.state for tr in ours] == [optuna.trial.TrialState.PRUNED] * 2
    client = MlflowClient()
    for trial in ours:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == "KILLED", run.info.status
        assert run.data.tags["state"] == "pruned" and "pruned" in run.data.tags["pruned"]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert f"Trial {trial.number} of the Optuna study `pruned`" in run.data.tags["mlflow.note.content"]
    # the parent run is not ended by a pruned trial: it finished on its own
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    assert study.metric_names == [f"valid_{t.kind.eval_metric}"]
    assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
