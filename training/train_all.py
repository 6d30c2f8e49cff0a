"""Train every model of a province (or of all): each task with labels, and for the credit grade
the specification's scorecard first, then the supervised model, which must beat it.

``train_all`` is the entry the CLI, ``telcoml byod`` and the demo call; one task's training is
``training.train.train_task``, the scorecard's ``training.fit_scorecard.fit_credit_scorecard``.
"""

from __future__ import annotations

import logging

from core import indicators as lib
from core.errors import ConfigurationError
from core.settings import Settings
from core.tasks import TASKS
from features.provinces import load_province
from training.data import labels_if_any, load_labels
from training.fit_scorecard import fit_credit_scorecard
from training.train import TrainResult, train_task
from training.tune import TuningBudget

log = logging.getLogger(__name__)


#: Which credit methods ``train_all`` fits: the specification's scorecard (no labels needed), the
#: supervised model (where credit labels exist), or both (the gate keeps the better as champion).
CREDIT_METHODS = ("both", "scorecard", "supervised")


def train_all(
    settings: Settings,
    province: str | None = None,
    budget: TuningBudget = TuningBudget(),
    tasks: list[str] | None = None,
    progress=None,
    credit_method: str = "both",
    **kwargs,
) -> list[TrainResult]:
    """Every task with labels (or the named ones), one after another; for the credit grade, the
    specification's scorecard first (it needs no labels), then the supervised model, which becomes
    the champion only by beating it on the same held-out customers (``credit_method``).

    A province that brought its own data may have labels for some tasks only; a model its
    province file withholds (a mandatory indicator dropped from every model) is left out.
    """
    if credit_method not in CREDIT_METHODS:
        raise ConfigurationError(f"credit method {credit_method!r}: one of {', '.join(CREDIT_METHODS)}")
    config = load_province(settings, province)
    withheld = config.models_withheld if config else {}
    credit = lib.CREDIT_GRADE  # the credit evaluation's one model
    scorecard = credit_method != "supervised" and credit not in withheld and (not tasks or credit in tasks)
    if not tasks:
        labels = labels_if_any(settings, province) if scorecard else load_labels(settings, province)
        for name, dropped in withheld.items():
            log.warning(
                "%s is not trained for %s: its file drops %s from every model", name, province, dropped
            )
        tasks = [
            name
            for name, t in TASKS.items()
            if t.label in labels.columns and labels[t.label].notna().any() and name not in withheld
        ]
    if credit_method == "scorecard":
        tasks = [name for name in tasks if name != credit]
    results = []
    if scorecard:
        split = {k: v for k, v in kwargs.items() if k in ("test_month", "train_months")}
        results.append(fit_credit_scorecard(settings, province, **split))
    for name in tasks:
        results.append(
            train_task(
                settings,
                name,
                province,
                budget,
                progress=progress(name, budget.trials) if progress else None,
                **kwargs,
            )
        )
    return results


__all__ = ["train_all", "CREDIT_METHODS"]
