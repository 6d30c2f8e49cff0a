"""The evaluation tasks, each declared once and read by every stage.

A task names its label, its feature contract (the Feast FeatureService), its XGBoost
objective, its headline metric and its business outputs. Tuning, evaluation, the
registry, serving and monitoring read these declarations; none hard-codes a task.
Sensitivity is one evaluation with two scores, so it has two models (tariff and
complaint) sharing one feature contract.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from features import indicators as lib
from features.labels import CREDIT_GRADES
from features.repo import service_name

Kind = Literal["ordinal", "binary", "multiclass", "score"]


@dataclass(frozen=True)
class Task:
    """One model: what it predicts, from which indicators, judged how."""

    name: str
    evaluation: str  # which of the four evaluations (and FeatureService) it belongs to
    kind: Kind
    label: str
    oracle_columns: tuple[str, ...]
    objective: str
    eval_metric: str  # XGBoost's validation metric: pruned and early-stopped on
    headline: str  # the business metric the model-to-oracle ratio is stated on
    name_zh: str
    name_en: str
    classes: tuple[str, ...] = ()
    monotone: bool = False  # apply the library's known directions (credit)
    guidance: str = ""
    #: Set for a province with a province file: whose model this is, and its indicators.
    province: str | None = None
    tailored_indicators: tuple[lib.Indicator, ...] | None = None

    @property
    def indicators(self) -> list[lib.Indicator]:
        if self.tailored_indicators is not None:
            return list(self.tailored_indicators)
        return lib.for_task(self.evaluation)

    @property
    def service(self) -> str:
        """The FeatureService this model is trained and served from (its feature contract)."""
        return service_name(self.evaluation, self.province)

    def tailored(self, config) -> "Task":
        """The task for a province's file (``features.provinces.ProvinceConfig``); itself for None."""
        if config is None:
            return self
        return self.for_indicators(config.province, config.effective_indicators(self.evaluation))

    def for_indicators(self, province: str, indicators: list[lib.Indicator]) -> "Task":
        return replace(self, province=province, tailored_indicators=tuple(indicators))

    @property
    def feature_names(self) -> list[str]:
        return [i.id for i in self.indicators]

    def model_name(self, province: str | None = None) -> str:
        """Registered model name in the MLflow registry; carries the province."""
        return f"telcoml-{self.name}" + (f"-{province.lower()}" if province else "")

    def experiment_name(self, province: str | None = None) -> str:
        return f"telcoml/{self.name}/{province.upper() if province else 'all'}"


#: Sensitivity levels on the 0-100 score, with the agents' rule for each.
SENSITIVITY_LEVELS = ((0.0, "low", "低"), (40.0, "medium", "中"), (70.0, "high", "高"))
#: Churn risk bands on the probability of closing next month.
CHURN_BANDS = ((0.0, "low", "低"), (0.05, "medium", "中"), (0.15, "high", "高"))

TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "credit_grade", lib.CREDIT_GRADE, "ordinal", "credit_grade",
            tuple(f"p_credit_grade_{g[0]}" for g in CREDIT_GRADES),
            "reg:squarederror", "rmse", "quadratic_weighted_kappa", "客户投诉信用分级", "Complaint credit grade",
            classes=tuple(str(g[0]) for g in CREDIT_GRADES), monotone=True,
            guidance="differentiated complaint handling by grade",
        ),
        Task(
            "tariff_sensitivity", lib.SENSITIVITY, "score", "tariff_sensitivity",
            ("tariff_sensitivity_expected",), "reg:squarederror", "rmse", "spearman",
            "话费敏感度", "Tariff sensitivity",
            guidance="with a tariff-sensitive customer, avoid recommending plans or new services",
        ),
        Task(
            "complaint_sensitivity", lib.SENSITIVITY, "score", "complaint_sensitivity",
            ("complaint_sensitivity_expected",), "reg:squarederror", "rmse", "spearman",
            "投诉敏感度", "Complaint sensitivity",
            guidance="with a complaint-sensitive customer, attend to the complaint first",
        ),
        Task(
            "churn", lib.CHURN, "binary", "churned_next_month", ("churn_probability",),
            "binary:logistic", "logloss", "roc_auc", "流失倾向", "Churn propensity",
            guidance="core customer warning and retention campaigns",
        ),
        Task(
            "channel_preference", lib.CHANNEL_PREFERENCE, "multiclass", "preferred_channel",
            tuple(f"p_channel_{c}" for c in lib.CHANNELS), "multi:softprob", "mlogloss", "top1_accuracy",
            "客户接触渠道偏好", "Channel preference", classes=lib.CHANNELS,
            guidance="best channel and the order of touches (service waves)",
        ),
    )
}


def task(name: str) -> Task:
    """Look a task up by name; an unknown name lists the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        from telcoml.errors import ConfigurationError

        raise ConfigurationError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None


def monotone_constraints(t: Task) -> tuple[int, ...] | None:
    """XGBoost monotone constraints from the library's known credit directions.

    Only numeric indicators can carry one; more arrears never improves a grade.
    """
    if not t.monotone:
        return None
    return tuple(i.credit_direction if i.kind != "category" else 0 for i in t.indicators)
