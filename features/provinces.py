"""Province files: how a provincial team tailors the indicators its models use.

One YAML file per province (``<provinces_dir>/GD.yaml``; examples in
``features/provinces/``) says which of the credit specification's six optional
indicators the province's models use, which other library indicators they leave out,
its own custom indicators (a formula, or a column of its own data), its grade
cut-offs, its handling per credit grade (``guidance``: any topic's value or text, checked
so a better grade never gets stricter handling) and drift thresholds.

Each model's indicators are the library's for its evaluation (``lib.for_task``), which
the file may shrink for every model (``drop_indicators``) or per model (``models:
churn: {drop_indicators: [...], add_indicators: [...]}``). The nine mandatory credit
indicators (``credit_role``) are mandatory for the credit grade only: a model section
cannot drop them from it, and a province that drops one from every model has no credit
grade (``models_withheld``; validation and bring-your-own-data say so). Every error
names the file and line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from core import guidance as handling
from core import indicators as lib
from core.errors import ConfigurationError
from core.retention_config import RetentionConfig
from core.scorecard_config import ScorecardConfig
from core.tasks import CREDIT_GRADES, TASKS
from features.outcomes import CreditOutcome
from features.yamlfile import YamlFile

#: Where the example province files shipped with the code live.
EXAMPLES_DIR = Path(__file__).resolve().parent / "provinces"
#: The keys the monitoring stage reads from ``drift_thresholds``.
DRIFT_KEYS = (
    "drifted_feature_share",
    "prediction_drift_score",
    "quality_drop",
    "indicator_drift_score",
    "outcome_rate_change",
    "confidence",
)
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


def _mandatory() -> list[str]:
    return [i.id for i in lib.credit_indicators("mandatory")]


def _optional() -> list[str]:
    return [i.id for i in lib.credit_indicators("optional")]


def _known(indicator_id: str, valid: list[str] | None = None, what: str = "indicators") -> lib.Indicator:
    if indicator_id not in lib.BY_ID:
        valid = valid or list(lib.BY_ID)
        close = difflib.get_close_matches(indicator_id, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown indicator {indicator_id!r}{hint}; valid {what}: {', '.join(valid)}")
    return lib.BY_ID[indicator_id]


def _optional_choice(indicator_id: str) -> str:
    ind = _known(indicator_id, _optional(), "optional indicators")
    if ind.credit_role == "mandatory":
        raise ValueError(
            f"{indicator_id!r} is one of the nine mandatory credit indicators and is always used; "
            f"list only optional ones: {', '.join(_optional())}"
        )
    if ind.credit_role != "optional":
        raise ValueError(
            f"{indicator_id!r} is not an optional credit indicator; "
            f"the optional ones are: {', '.join(_optional())}"
        )
    return indicator_id


def _library(indicator_id: str) -> str:
    _known(indicator_id)
    return indicator_id


def _mandatory_kept(indicator_id: str) -> None:
    """Refuses to drop one of the nine mandatory indicators from the credit grade."""
    ind = lib.BY_ID[indicator_id]
    if ind.credit_role == "mandatory":
        raise ValueError(
            f"{indicator_id!r} ({ind.name_zh}) is mandatory for the credit grade and cannot be dropped "
            f"from it; the nine mandatory indicators are: {', '.join(_mandatory())} (drop it from the "
            "other models under their own key, or from every model with the top-level drop_indicators: "
            "the province then has no credit grade)"
        )


def _evaluation(name: str) -> str:
    if name in lib.EVALUATIONS:
        return name
    if name in TASKS:  # a model's name (tariff_sensitivity) -> its evaluation
        return TASKS[name].evaluation
    raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(lib.EVALUATIONS)}")


OptionalId = Annotated[str, AfterValidator(_optional_choice)]
LibraryId = Annotated[str, AfterValidator(_library)]
Evaluation = Annotated[str, AfterValidator(_evaluation)]


def _drift_key(key: str) -> str:
    if key not in DRIFT_KEYS:
        raise ValueError(f"unknown drift threshold {key!r}; valid keys: {', '.join(DRIFT_KEYS)}")
    return key


DriftKey = Annotated[str, AfterValidator(_drift_key)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomIndicator(_Strict):
    """A province's own indicator: a formula over library indicators and raw tables, or a column
    of its own data."""

    id: str
    name_zh: str
    name_en: str
    definition: str
    formula: str | None = None
    column: str | None = None
    kind: Literal["int", "float", "category"] = "float"
    unit: str = ""
    valid_range: tuple[float, float] | None = None
    codes: tuple[str, ...] | None = None
    nullable: bool = False
    tasks: list[Evaluation] = Field(default_factory=lambda: [lib.CREDIT_GRADE], min_length=1)
    #: Known direction of effect on the credit grade (+1 better, -1 worse, 0 unknown).
    credit_direction: Literal[-1, 0, 1] = 0

    @field_validator("id")
    @classmethod
    def _new_name(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):  # match() would let a trailing newline through
            raise ValueError(f"custom indicator id {value!r} must be lower_snake_case (a-z, 0-9, _)")
        if value in lib.BY_ID:
            raise ValueError(
                f"custom indicator id {value!r} is already a library indicator; choose another name"
            )
        return value

    @field_validator("formula")
    @classmethod
    def _parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            from features.custom import formula_names

            try:
                formula_names(value)  # raises ValueError naming what is wrong (or the limit passed)
            except ValueError as err:
                if "id" not in info.data:  # the id itself was refused: its own error names it
                    raise
                raise ValueError(f"custom indicator {info.data['id']!r}: {err}") from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CustomIndicator:
        if (self.formula is None) == (self.column is None):
            raise ValueError(f"custom indicator {self.id!r} needs exactly one of 'formula' or 'column'")
        if self.kind == "category":
            if not self.codes:
                raise ValueError(f"custom indicator {self.id!r} of kind category needs its 'codes'")
            if self.formula is not None:
                raise ValueError(
                    f"custom indicator {self.id!r}: a formula gives a number; "
                    "a category indicator must come from a column"
                )
        if self.valid_range is not None and self.valid_range[0] > self.valid_range[1]:
            raise ValueError(f"valid_range of {self.id!r} must be [low, high] with low <= high")
        return self

    def indicator(self, province: str) -> lib.Indicator:
        """The custom indicator as a library entry of the province's own feature view."""
        source = (
            f"formula: {self.formula}" if self.formula else f"column {self.column} of the province's data"
        )
        return lib.Indicator(
            self.id,
            self.name_zh,
            self.name_en,
            custom_subject(province),
            (f"{province} custom",),
            f"{self.definition} ({source})",
            self.unit,
            self.kind,
            valid_range=self.valid_range,
            codes=self.codes,
            nullable=self.nullable,
            credit_role=None,
            used_by=tuple(dict.fromkeys(self.tasks)),
            credit_direction=self.credit_direction,
        )


#: The longest guidance text a province may give (an agent reads it during the call).
MAX_GUIDANCE_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _agent_text(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty text; give the sentence the agent reads")
    if _CONTROL.search(value):
        raise ValueError("a text the agent reads is one line without control characters")
    return value


GuidanceText = Annotated[str, Field(max_length=MAX_GUIDANCE_CHARS), AfterValidator(_agent_text)]


class GuidanceSentence(_Strict):
    """A sentence in both languages (the complaint-handling summary of a grade)."""

    en: GuidanceText
    zh: GuidanceText


def _within(low: int, high: int, what: str):
    def check(value: int) -> int:
        if not low <= value <= high:
            shown = value if abs(value) < 10**9 else f"a number of {len(str(abs(value)))} digits"
            raise ValueError(f"{what} from {low} to {high}, got {shown}")
        return value

    return AfterValidator(check)


def _value_type(topic: handling.Topic):
    """What a province may set a topic's value to."""
    if topic.kind == "code":
        return Literal[topic.codes]
    if topic.kind == "flag":
        return StrictBool
    if topic.kind == "yuan":
        return Annotated[StrictInt, _within(*handling.GIFT_CEILING_RANGE, "a gift ceiling in yuan")]
    return Annotated[StrictInt, _within(*handling.TIME_LIMIT_RANGE, "a time limit in hours")]


class _TopicOverride(_Strict):
    en: GuidanceText | None = None
    zh: GuidanceText | None = None

    @model_validator(mode="after")
    def _both_languages(self):
        if (self.en is None) != (self.zh is None):
            raise ValueError("give the text in both languages (en and zh), or neither")
        if self.en is None and getattr(self, "value", None) is None:
            raise ValueError("give a value, a text (en and zh), or both")
        return self


#: Per topic: its value and/or its text in both languages.
TOPIC_OVERRIDES = {
    name: create_model(
        f"{name.title().replace('_', '')}Override",
        __base__=_TopicOverride,
        value=(_value_type(topic) | None, None),
    )
    for name, topic in handling.TOPICS.items()
}


class _GradeGuidanceBase(_Strict):
    @model_validator(mode="before")
    @classmethod
    def _topics(cls, data):
        if not isinstance(data, dict):
            return data
        if {"en", "zh"} & set(data):
            raise ValueError(
                "en/zh directly under a grade: put the complaint-handling sentence under its topic, "
                "complaint_handling: {en: ..., zh: ...}"
            )
        for key in data:
            if key not in handling.OVERRIDABLE:
                close = [t for t in handling.OVERRIDABLE if t.startswith(str(key))] or (
                    difflib.get_close_matches(str(key), handling.OVERRIDABLE, n=1)
                )
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"unknown guidance topic {key!r}{hint}; topics: {', '.join(handling.OVERRIDABLE)}"
                )
        return data


#: A grade's section of a province's guidance: any topic's value and/or text, and the summary sentence.
GradeGuidance = create_model(
    "GradeGuidance",
    __base__=_GradeGuidanceBase,
    complaint_handling=(GuidanceSentence | None, None),
    **{name: (model | None, None) for name, model in TOPIC_OVERRIDES.items()},
)
_GRADES = {g[0]: g[1] for g in CREDIT_GRADES}


def _credit_grade(grade: int) -> int:
    if grade not in _GRADES:
        raise ValueError(
            f"unknown credit grade {grade!r}; the grades are 1 ({_GRADES[1]}) to 5 ({_GRADES[5]})"
        )
    return grade


CreditGrade = Annotated[StrictInt, AfterValidator(_credit_grade)]


class ModelIndicators(_Strict):
    """One model's section of a province file: library indicators it leaves out, and library
    indicators it uses besides the library's set for its evaluation."""

    drop_indicators: list[LibraryId] = Field(default_factory=list)
    add_indicators: list[LibraryId] = Field(default_factory=list)

    @field_validator("drop_indicators", "add_indicators")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        return listed_once(value)

    def checked(self, evaluation: str) -> ModelIndicators:
        """Itself, if it fits the evaluation's library set; else ValueError naming the list and indicator."""
        used = [i.id for i in lib.for_task(evaluation)]
        both = sorted(set(self.drop_indicators) & set(self.add_indicators))
        if both:
            raise ValueError(f"both dropped and added: {', '.join(both)}")
        for d in self.drop_indicators:
            if d not in used:
                raise ValueError(
                    f"drop_indicators: {d!r} is not one of the {evaluation} model's indicators; "
                    f"it uses: {', '.join(used)}"
                )
            if evaluation == lib.CREDIT_GRADE:
                _mandatory_kept(d)
        return self


class ModelSections(_Strict):
    """The per-model sections of a province file, one optional key per evaluation (its feature
    contract: the two sensitivity models share ``sensitivity``)."""

    credit_grade: ModelIndicators | None = None
    sensitivity: ModelIndicators | None = None
    churn: ModelIndicators | None = None
    channel_preference: ModelIndicators | None = None

    @model_validator(mode="before")
    @classmethod
    def _evaluations(cls, data):
        for key in data if isinstance(data, dict) else ():
            if key in lib.EVALUATIONS:
                continue
            if key in TASKS:
                evaluation = TASKS[key].evaluation
                raise ValueError(
                    f"{key!r} is one of the {evaluation} models, which share one feature contract: "
                    f"tailor them under {evaluation!r}"
                )
            close = difflib.get_close_matches(str(key), lib.EVALUATIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown model {key!r}{hint}; valid models: {', '.join(lib.EVALUATIONS)}")
        return data

    @field_validator("*")
    @classmethod
    def _fits(cls, value: ModelIndicators | None, info: ValidationInfo) -> ModelIndicators | None:
        return value.checked(info.field_name) if value is not None else None

    def of(self, evaluation: str) -> ModelIndicators:
        return getattr(self, evaluation) or ModelIndicators()


assert tuple(ModelSections.model_fields) == lib.EVALUATIONS, "one section per evaluation"


class _Guidance:
    """A guidance section standing for its province file (``core.guidance`` reads ``.guidance``)."""

    def __init__(self, guidance: dict):
        self.guidance = guidance


def repeated(values: list[str]) -> list[str]:
    """The values listed more than once, sorted (for validation messages)."""
    return sorted({v for v in values if values.count(v) > 1})


def listed_once(value: list[str]) -> list[str]:
    """The list itself, or a validation error naming what it repeats."""
    twice = repeated(value)
    if twice:
        raise ValueError(f"listed more than once: {', '.join(twice)}")
    return value


def province_code(value: str) -> str:
    """A province code the library knows (``GD``), or a validation error listing them."""
    codes = lib.BY_ID["province"].codes or ()
    if value not in codes:
        raise ValueError(f"unknown province {value!r}; valid province codes: {', '.join(codes)}")
    return value


def custom_subject(province: str) -> str:
    """The feature view holding a province's custom indicators, e.g. ``custom_gd``."""
    return f"custom_{province.lower()}"


class ProvinceConfig(_Strict):
    """One province's tailoring of the indicators, its grades, guidance and drift thresholds."""

    province: str
    name_zh: str = ""
    name_en: str = ""
    optional_indicators: list[OptionalId] = Field(default_factory=list)
    #: Library indicators every model leaves out (a mandatory credit one: no credit grade).
    drop_indicators: list[LibraryId] = Field(default_factory=list)
    #: Per model (evaluation): indicators it leaves out or adds (``ModelSections``).
    models: ModelSections = Field(default_factory=ModelSections)
    custom_indicators: list[CustomIndicator] = Field(default_factory=list)
    #: Four increasing cut-offs on the expected grade (1..5): grade = 1 + cut-offs passed.
    grade_cutoffs: tuple[float, float, float, float] | None = None
    #: Handling per credit grade (1..5): topics' values and texts replacing the group's
    #: (``core.guidance``).
    guidance: dict[CreditGrade, GradeGuidance] = Field(default_factory=dict)
    drift_thresholds: dict[DriftKey, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    #: Which credit events make a bad credit outcome, within how many months (``features.outcomes``;
    #: default: every event type within 3 months).
    credit_outcome: CreditOutcome = Field(default_factory=CreditOutcome)
    #: How the province builds its credit scorecard (the specification's method, needing no grade
    #: labels): weighting method, the experts' AHP judgements, cut-offs (``core.scorecard_config``).
    scorecard: ScorecardConfig | None = None
    #: Core customer retention (核心客户保有): who is core, the two warning methods and the
    #: retention list's capacity (``core.retention_config``; default: the group's).
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("province")
    @classmethod
    def _code(cls, value: str) -> str:
        return province_code(value)

    @field_validator("optional_indicators", "drop_indicators")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        return listed_once(value)

    @field_validator("models")
    @classmethod
    def _added_where_left_out(cls, value: ModelSections, info: ValidationInfo) -> ModelSections:
        everywhere = set(info.data.get("drop_indicators", []))
        unchosen = set(_optional()) - set(info.data.get("optional_indicators", []))
        for evaluation in lib.EVALUATIONS:
            own = value.of(evaluation)
            used = {i.id for i in lib.for_task(evaluation)} - everywhere - unchosen - set(own.drop_indicators)
            for a in own.add_indicators:
                if a in everywhere:
                    raise ValueError(
                        f"{evaluation}.add_indicators: {a!r} is dropped from every model by the top-level "
                        "drop_indicators; drop it from the other models under their own keys instead"
                    )
                if a in used:
                    raise ValueError(
                        f"{evaluation}.add_indicators: {a!r} is already one of the {evaluation} model's "
                        "indicators"
                    )
        return value

    @field_validator("custom_indicators")
    @classmethod
    def _unique_ids(cls, value: list[CustomIndicator]) -> list[CustomIndicator]:
        twice = repeated([c.id for c in value])
        if twice:
            raise ValueError(f"custom indicator ids used more than once: {', '.join(twice)}")
        return value

    @field_validator("grade_cutoffs")
    @classmethod
    def _increasing(cls, value):
        if value is not None and not (1 < value[0] < value[1] < value[2] < value[3] < 5):
            raise ValueError(
                f"grade_cutoffs must be four increasing numbers between 1 and 5, got {list(value)}"
            )
        return value

    @field_validator("guidance")
    @classmethod
    def _better_never_stricter(cls, value: dict) -> dict:
        effective = {g: handling.values(g, _Guidance(value)) for g in handling.CREDIT_HANDLING}
        breaks = handling.monotone_breaks(effective)
        if breaks:
            raise ValueError("; ".join(breaks))
        return value

    @field_validator("drift_thresholds")
    @classmethod
    def _drift_share(cls, value: dict[str, float]) -> dict[str, float]:
        if value.get("drifted_feature_share", 0) > 1:
            raise ValueError("drifted_feature_share is a share of the indicators: between 0 and 1")
        if "confidence" in value and not 0.5 < value["confidence"] < 1:
            raise ValueError("confidence is how sure an alert must be: between 0.5 and 1 (e.g. 0.95)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ProvinceConfig:
        both = sorted(set(self.optional_indicators) & set(self.drop_indicators))
        if both:
            raise ValueError(f"both chosen and dropped: {', '.join(both)}")
        for c in self.custom_indicators:
            if c.formula is None:
                continue
            from features.custom import formula_names

            for name in formula_names(c.formula):
                if name in self.dropped:
                    raise ValueError(
                        f"custom indicator {c.id!r} uses {name!r}, which this province does not use"
                    )
        return self

    @property
    def dropped(self) -> set[str]:
        """Library indicators every one of this province's models leaves out (the optional credit
        ones it did not choose, and its top-level ``drop_indicators``)."""
        return (set(_optional()) - set(self.optional_indicators)) | set(self.drop_indicators)

    @property
    def models_withheld(self) -> dict[str, list[str]]:
        """Model (task name) -> the mandatory indicators this province drops from every model: the
        models that cannot be trained for the province. Only the credit grade has mandatory ones."""
        gone = [i for i in _mandatory() if i in self.drop_indicators]
        if not gone:
            return {}
        return {name: gone for name, t in TASKS.items() if t.evaluation == lib.CREDIT_GRADE}

    @property
    def custom(self) -> list[lib.Indicator]:
        return [c.indicator(self.province) for c in self.custom_indicators]

    def effective_indicators(self, task: str) -> list[lib.Indicator]:
        """The indicators the province's model of ``task`` uses: the library's for the task minus
        what the province leaves out of every model and of this one, plus what it adds to this
        one, plus its custom indicators for the task.

        The credit grade's set always holds the nine mandatory indicators (its feature contract);
        a province dropping one of them from every model has no credit grade (``models_withheld``).
        """
        evaluation = _evaluation(task)
        own = self.models.of(evaluation)
        left_out = (self.dropped - set(own.add_indicators)) | set(own.drop_indicators)
        if evaluation == lib.CREDIT_GRADE:
            left_out -= set(_mandatory())
        base = [
            i
            for i in lib.CATALOGUE
            if (evaluation in i.used_by or i.id in own.add_indicators) and i.id not in left_out
        ]
        return base + [i for i in self.custom if evaluation in i.used_by]

    def all_indicators(self) -> list[lib.Indicator]:
        """Every indicator any of the province's models uses, library first, then custom."""
        seen: dict[str, lib.Indicator] = {}
        for evaluation in lib.EVALUATIONS:
            for i in self.effective_indicators(evaluation):
                seen.setdefault(i.id, i)
        return list(seen.values())


def missing_indicators(
    config: ProvinceConfig | None, available: Iterable[str], tasks: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Model (task name) -> the indicators it uses that ``available`` lacks; [] when it can be trained.

    ``available``: ids of the indicators the province's data brings (library and custom). Without
    a province file a model uses the group's set. A model the province file withholds
    (``models_withheld``) lacks the mandatory indicators the file drops, whatever the data brings.
    """
    available = set(available)
    withheld = config.models_withheld if config is not None else {}
    out = {}
    for name in tasks if tasks is not None else TASKS:
        t = TASKS[name]
        needed = config.effective_indicators(t.evaluation) if config is not None else t.indicators
        missing = [*withheld.get(name, []), *(i.id for i in needed if i.id not in available)]
        out[name] = list(dict.fromkeys(missing))
    return out


def trainable_models(
    config: ProvinceConfig | None, available: Iterable[str], tasks: Iterable[str] | None = None
) -> list[str]:
    """The models (of ``tasks``, default every one) whose indicators ``available`` all brings."""
    return [name for name, missing in missing_indicators(config, available, tasks).items() if not missing]


def province_file(settings, code: str) -> Path:
    return Path(settings.provinces_dir) / f"{code.upper()}.yaml"


def read_province(path: Path) -> ProvinceConfig:
    """Read and validate one province file; the file name must be the province code."""
    source = YamlFile(path)
    config = source.validate(ProvinceConfig)
    if Path(path).stem.upper() != config.province:
        raise source.error(
            ("province",),
            f"the file is named {Path(path).name} but says province "
            f"{config.province!r}; name it {config.province}.yaml",
        )
    return config


def load_province(settings, code: str | None) -> ProvinceConfig | None:
    """The province's configuration, or None when it has no file (it uses the group's set)."""
    if not code:
        return None
    path = province_file(settings, code)
    if not path.exists():
        return None
    return read_province(path)


def load_provinces(settings) -> list[ProvinceConfig]:
    """Every province file in the settings' provinces directory, by province code."""
    directory = Path(settings.provinces_dir)
    if not directory.is_dir():
        return []
    return [read_province(p) for p in sorted(directory.glob("*.yaml"))]


def require_province(settings, code: str) -> ProvinceConfig:
    """Like ``load_province``, but a missing file is an error naming where it was looked for."""
    config = load_province(settings, code)
    if config is None:
        raise ConfigurationError(
            f"no province file for {code.upper()}: expected {province_file(settings, code)} "
            f"(examples in {EXAMPLES_DIR})"
        )
    return config


__all__ = [
    "ProvinceConfig",
    "ModelIndicators",
    "CustomIndicator",
    "missing_indicators",
    "trainable_models",
    "DRIFT_KEYS",
    "load_province",
    "load_provinces",
    "read_province",
    "require_province",
    "custom_subject",
    "EXAMPLES_DIR",
]
