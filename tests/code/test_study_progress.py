"""The training bar counts a study's finished trials, whichever worker ran them."""

import optuna

from training.tune import StudyProgress


def test_the_bar_counts_every_workers_trials_of_this_run_only():
    storage = optuna.storages.InMemoryStorage()
    lead = optuna.create_study(study_name="churn-all-2026-04-s7", storage=storage)
    lead.optimize(lambda trial: trial.suggest_float("eta", 0.01, 0.3), n_trials=2)  # an earlier run's
    counted: list[int] = []
    bar = StudyProgress(lead, counted.append)

    helper = optuna.load_study(study_name="churn-all-2026-04-s7", storage=storage)
    helper.optimize(lambda trial: trial.suggest_float("eta", 0.01, 0.3), n_trials=3)  # another worker's
    lead.optimize(lambda trial: trial.suggest_float("eta", 0.01, 0.3), n_trials=1, callbacks=[bar])
    assert sum(counted) == 4

    helper.optimize(lambda trial: trial.suggest_float("eta", 0.01, 0.3), n_trials=2)  # after the lead's last
    bar()  # once every worker is done
    assert sum(counted) == 6
