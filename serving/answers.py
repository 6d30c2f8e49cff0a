"""Answers in the business's words: each task's block (grade, score, probability or ranking,
with reasons), the handling guidance, and the provenance of the whole answer.

Pure apart from the models: every task's kind words its own block and applies its rules
over the model (``core.kinds``), the task declarations hold the guidance, derived from the
decided grade (``core.tasks.guidance``).
"""

from __future__ import annotations

from core.tasks import TASKS, guidance
from serving import retention
from serving.champions import ModelSet
from training.explain import reasons


def customer_answer(
    msisdn: str, province: str, scored: dict, models: ModelSet, features_as_of: str | None, answered_from: str
) -> dict:
    """The whole answer about one customer: ``score_frame``'s evaluations and their provenance."""
    return {
        "msisdn": msisdn,
        "province": province,
        **scored,
        "model_versions": models.versions,
        "models": models.names,
        "features_as_of": features_as_of,
        "answered_from": answered_from,
    }


def score_frame(
    models: ModelSet, features, top_reasons: int = 3, reason_tasks: tuple[str, ...] | None = None
) -> list[dict]:
    """Every evaluation for each row of ``features`` (customers the store knows).

    One float matrix feeds all models; SHAP contributions (a DMatrix each) are computed
    only for the tasks in ``reason_tasks`` (default: all).
    """
    reason_tasks = tuple(TASKS) if reason_tasks is None else reason_tasks
    encoder = models.encoder
    matrix = encoder.matrix(features)
    blocks: dict[str, list[dict]] = {}
    for name, model in models.models.items():
        model_input = encoder.model_input(name, matrix)
        p = model.serve(model_input)
        blocks[name] = model.answer_blocks(model_input, p, models.config)
        if name in reason_tasks:
            contributions = model.serve_told_contributions(model_input, p)
            explained = reasons(
                model, features, top=top_reasons, contributions=contributions, probabilities=p
            )
        else:
            explained = [[] for _ in range(len(features))]
        for block, why in zip(blocks[name], explained):
            block["reasons"] = why
        # rules over the model (the black list caps the credit grade), named first in the reasons
        model.task.kind.overrule(name, blocks[name], features)
        if models.retention is not None and name == models.retention.task:
            # the retention list's cut-off, not a fixed band, decides the retention advice
            retention.mark(blocks[name], p, features, models.config, models.retention)
    out = []
    for i in range(len(features)):
        answer = {name: blocks[name][i] for name in TASKS if name in blocks}
        answer["guidance"] = guidance(answer, models.config)
        out.append(answer)
    return out
