"""The evaluation models, each declared once and read by every stage.

A task names its label (and what a valid label looks like), its feature contract (the
Feast FeatureService of its evaluation), its kind (``core.kinds``: how it is trained,
calibrated, judged, worded, recorded and written to the CRM file), its oracle columns
in the generator's truth, and the handling guidance the documents attach to it (the credit
grade's differentiated handling table is ``core.guidance``).
Training, serving, batch scoring, bring-your-own-data and monitoring loop over
``TASKS`` and ask each task's kind; none names a task. Sensitivity is one evaluation
with two scores, so it has two models sharing one feature contract.

Adding a model of an existing kind is one ``Task`` here (``register`` for a trial) and,
for synthetic data, its label and oracle in ``features/labels.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core import indicators as lib
from core.guidance import Advice, Handling
from core.kinds import Binary, GradeCap, Kind, Levels, Ranking, RiskGrade, Score
from core.scorecard_config import DEFAULT_GRADE_SHARES

#: The specification's five credit grades, worst first: (code, Chinese, English).
CREDIT_GRADES = (
    (1, "信用极差", "extremely poor"),
    (2, "信用较差", "poor"),
    (3, "信用一般", "average"),
    (4, "信用较好", "good"),
    (5, "信用极好", "excellent"),
)
#: Sensitivity levels on the 0-100 score.
SENSITIVITY_LEVELS: Levels = ((0.0, "low", "低"), (40.0, "medium", "中"), (70.0, "high", "高"))
#: Churn risk bands on the probability of closing next month.
CHURN_BANDS: Levels = ((0.0, "low", "低"), (0.05, "medium", "中"), (0.15, "high", "高"))

#: The black-list rule (issue 13): the credit specification imports the operator's black list
#: (黑名单) beside the models' indicators; a listed customer gets no lenient handling whatever the
#: model says, so the grade is capped at 2 (信用较差) and the rule named among the reasons.
BLACK_LIST_RULE = GradeCap(
    "black_list",
    "black_list_flag",
    1,
    2,
    "Black-list rule: a customer on the black list is graded at most {highest}; the model said {grade}.",
    "黑名单规则：黑名单客户信用等级最高为{highest}级，模型评定为{grade}级。",
)


def _said(en: str, zh: str):
    return lambda answer, config: (en, zh)


def _waves(answer: dict, config) -> tuple[str, str]:
    """The service waves (服务波次): ordered touches over time, wave k on the k-th channel of the
    ranking when the wave before drew no response; channels named in each language's words."""
    first, *later = [lib.CHANNEL_NAMES[c] for c in answer["channel_preference"]["ranking"][:3]]
    en = f"Service waves: wave 1 on the {first[1]}" + "".join(
        f"; no response: wave {k} on the {name[1]}" for k, name in enumerate(later, 2)
    )
    zh = f"服务波次：第1波通过{first[0]}" + "".join(
        f"；未响应则第{k}波通过{name[0]}" for k, name in enumerate(later, 2)
    )
    return en + ".", zh + "。"


def _retain(answer: dict) -> bool:
    """On the province's retention list (``retention``, set where a list's cut-off is known:
    ``serving.retention``), else the high churn band."""
    churn = answer["churn"]
    return churn.get("retention", churn["band"] == "high")


def _retention_words(answer: dict, config) -> tuple[str, str]:
    if "retention" in answer["churn"]:
        return (
            "Core customer on the retention list: offer the retention (保有) package.",
            "核心客户，列入保有名单：推荐保有方案。",
        )
    return "High churn risk: offer the retention (保有) package.", "高流失风险：推荐保有方案。"


@dataclass(frozen=True)
class Task:
    """One model: what it predicts, from which indicators, of which kind, with what advice."""

    name: str
    evaluation: str  # which of the four evaluations (and FeatureService) it belongs to
    kind: Kind
    label: str
    label_spec: lib.Indicator  # what a valid label looks like (a province's own labels are checked with it)
    oracle_columns: tuple[str, ...]
    name_zh: str
    name_en: str
    monotone: bool = False  # apply the library's known directions (credit)
    guidance: tuple[Advice, ...] = ()
    #: Differentiated handling by grade (the credit grade): its advice and CRM file columns.
    handling: Handling | None = None
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
        return lib.service_name(self.evaluation, self.province)

    @property
    def headline(self) -> str:
        return self.kind.headline

    @property
    def classes(self) -> tuple[str, ...]:
        return getattr(self.kind, "classes", ())

    def crm_fields(self) -> list[tuple[str, str]]:
        """The task's columns of the CRM interface file as (name, Arrow type name): its kind's,
        the first being the prediction, then its handling's."""
        own = self.handling.crm_fields() if self.handling is not None else []
        return [*self.kind.crm_fields(self.name), *own]

    @property
    def prediction_column(self) -> str:
        """The monitoring records' column of this model's prediction."""
        return f"pred_{self.name}"

    def tailored(self, config) -> Task:
        """The task for a province's file (``features.provinces.ProvinceConfig``); itself for None.

        A model the file withholds (``models_withheld``: a mandatory credit indicator dropped from
        every model) is a ConfigurationError naming the indicators; ``features.provinces.
        trainable_models`` tells beforehand which models a province can train.
        """
        if config is None:
            return self
        withheld = config.models_withheld.get(self.name)
        if withheld:
            from core.errors import ConfigurationError

            raise ConfigurationError(
                f"province {config.province} has no {self.name} model: its file drops "
                f"{', '.join(withheld)} from every model (drop_indicators), and the {self.name} model "
                "needs the nine mandatory credit indicators"
            )
        return self.for_indicators(config.province, config.effective_indicators(self.evaluation))

    def for_indicators(self, province: str, indicators: list[lib.Indicator]) -> Task:
        return replace(self, province=province, tailored_indicators=tuple(indicators))

    @property
    def feature_names(self) -> list[str]:
        return [i.id for i in self.indicators]

    def model_name(self, province: str | None = None) -> str:
        """Registered model name in the MLflow registry; carries the province."""
        return f"telcoml-{self.name}" + (f"-{province.lower()}" if province else "")

    def experiment_name(self, province: str | None = None) -> str:
        return f"telcoml/{self.name}/{province.upper() if province else 'all'}"

    def monotone_constraints(self) -> tuple[int, ...] | None:
        """XGBoost monotone constraints from the library's known credit directions.

        Only numeric indicators can carry one; more arrears never improves a grade (nor lowers
        the risk of a bad credit event: the kind's ``monotone_sign``).
        """
        if not self.monotone:
            return None
        sign = self.kind.monotone_sign
        return tuple(sign * i.credit_direction if i.kind != "category" else 0 for i in self.indicators)


def _label(task: str, name_zh: str, name_en: str, formula: str, unit: str, kind, **extra) -> lib.Indicator:
    return lib.Indicator(task, name_zh, name_en, "profile", (), formula, unit, kind, nullable=True, **extra)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "credit_grade",
            lib.CREDIT_GRADE,
            # learned from the credit outcome (a bad credit event in the months after), not from
            # grade labels no province has; the specification's scorecard needs neither
            # (``training.scorecard``)
            RiskGrade(CREDIT_GRADES, DEFAULT_GRADE_SHARES, caps=(BLACK_LIST_RULE,)),
            "credit_bad_event",
            _label(
                "credit_bad_event",
                "信用不良事件",
                "Bad credit event",
                "1 if a bad credit event (complaint verified unfounded, refund reversed, double refund, "
                "arrears written off, black-listed) followed within the outcome's horizon "
                "(features.outcomes)",
                "flag",
                "int",
                valid_range=(0, 1),
            ),
            tuple(f"p_credit_grade_{g[0]}" for g in CREDIT_GRADES),
            "客户投诉信用分级",
            "Complaint credit grade",
            monotone=True,
            handling=Handling("credit_grade", sensitive=("tariff_sensitivity", "complaint_sensitivity")),
        ),
        Task(
            "tariff_sensitivity",
            lib.SENSITIVITY,
            Score(SENSITIVITY_LEVELS),
            "tariff_sensitivity",
            _label(
                "tariff_sensitivity",
                "话费敏感度",
                "Tariff sensitivity",
                "0-100",
                "score",
                "float",
                valid_range=(0, 100),
            ),
            ("tariff_sensitivity_expected",),
            "话费敏感度",
            "Tariff sensitivity",
            guidance=(
                Advice(
                    "no_recommendation",
                    30,
                    lambda a: a["tariff_sensitivity"]["level"] == "high",
                    _said(
                        "Tariff-sensitive: do not recommend plans or new services.",
                        "话费敏感客户：不推荐套餐或新业务。",
                    ),
                ),
            ),
        ),
        Task(
            "complaint_sensitivity",
            lib.SENSITIVITY,
            Score(SENSITIVITY_LEVELS),
            "complaint_sensitivity",
            _label(
                "complaint_sensitivity",
                "投诉敏感度",
                "Complaint sensitivity",
                "0-100",
                "score",
                "float",
                valid_range=(0, 100),
            ),
            ("complaint_sensitivity_expected",),
            "投诉敏感度",
            "Complaint sensitivity",
            guidance=(
                Advice(
                    "complaint_first",
                    20,
                    lambda a: a["complaint_sensitivity"]["level"] == "high",
                    _said(
                        "Complaint-sensitive: attend to the complaint first.",
                        "投诉敏感客户：优先处理投诉诉求。",
                    ),
                ),
            ),
        ),
        Task(
            "churn",
            lib.CHURN,
            Binary(CHURN_BANDS),
            "churned_next_month",
            _label(
                "churned_next_month",
                "流失",
                "Churned the next month",
                "1 if the line closed the next month",
                "flag",
                "int",
                valid_range=(0, 1),
            ),
            ("churn_probability",),
            "流失倾向",
            "Churn propensity",
            guidance=(Advice("retention", 40, _retain, _retention_words),),
        ),
        Task(
            "channel_preference",
            lib.CHANNEL_PREFERENCE,
            Ranking(lib.CHANNELS, "channel"),
            "preferred_channel",
            _label(
                "preferred_channel",
                "偏好渠道",
                "Preferred channel",
                "the channel the customer prefers",
                "code",
                "category",
                codes=lib.CHANNELS,
            ),
            tuple(f"p_channel_{c}" for c in lib.CHANNELS),
            "客户接触渠道偏好",
            "Channel preference",
            guidance=(Advice("campaign_waves", 50, lambda a: True, _waves),),
        ),
    )
}


def task(name: str) -> Task:
    """Look a task up by name; an unknown name lists the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        from core.errors import ConfigurationError

        raise ConfigurationError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None


def register(t: Task) -> Task:
    """Add a task to ``TASKS`` (every stage then trains, serves, records and monitors it)."""
    TASKS[t.name] = t
    return t


def unregister(name: str) -> None:
    TASKS.pop(name, None)


def crm_columns(outputs: dict, config=None, features=None) -> dict:
    """The CRM interface file's task columns for the tasks in ``outputs`` (task -> model outputs):
    each kind's columns, with its rules over the model (``features``: the customers' indicators),
    then each handling's, which may read the other tasks' columns (sensitivity levels)."""
    columns = {}
    for name, t in TASKS.items():
        if name in outputs:
            columns.update(t.kind.crm_columns(name, outputs[name], config, features))
    for name, t in TASKS.items():
        if name in outputs and t.handling is not None:
            decided = columns[t.kind.crm_fields(name)[0][0]]
            columns.update(t.handling.crm_columns(decided, config, columns))
    return columns


def advice_of(t: Task) -> tuple[Advice, ...]:
    """A task's advice: its own, and its handling's by grade (placed first, from order 10)."""
    return (*(t.handling.advice(10) if t.handling is not None else ()), *t.guidance)


def guidance(answer: dict, config=None) -> list[dict]:
    """The documents' differentiated handling guidance for one answer, in both languages.

    Each task present in ``answer`` contributes its advice; a handling topic's item carries its
    ``value`` (a code, a flag, yuan or hours) for the CRM. A province's file may replace a grade's
    values and texts (``core.guidance``).
    """
    advice = sorted(
        (a for name, t in TASKS.items() if name in answer for a in advice_of(t)), key=lambda a: a.order
    )
    items = []
    for a in advice:
        if a.when(answer):
            en, zh = a.text(answer, config)
            item = {"topic": a.topic, "text_en": en, "text_zh": zh}
            if a.value is not None:
                item["value"] = a.value(answer, config)
            items.append(item)
    return items
