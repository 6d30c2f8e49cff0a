"""The agent's guidance: advice shown with an answer, and the credit grade's differentiated handling.

The group's 2009 credit specification names what the complaint credit grade is applied to —
verification and refund (查证/退返), small gifts (小额赠送), handling time limits (处理时限),
reopening a line suspended for arrears (欠费停机重开), international roaming (国际漫游), access
to a 10086 agent (接入10086人工服务), opportunity marketing (机会营销) and customer care
(客户关怀) — but gives no values. ``CREDIT_HANDLING`` holds the platform's documented defaults;
a province file overrides any topic of any grade, value and/or text (``features.provinces``).
A better grade never gets stricter handling than a worse one (``monotone_breaks``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Advice:
    """One piece of the agent's guidance: shown when ``when(answer)`` holds.

    ``answer`` maps each task's name to its answer block; ``text`` gives (English, Chinese)
    from the answer and the province file; ``value``, when set, the item's code for the CRM.
    ``order`` places it among all tasks' advice.
    """

    topic: str
    order: int
    when: Callable[[dict], bool]
    text: Callable[[dict, object], tuple[str, str]]
    value: Callable[[dict, object], object] | None = None


@dataclass(frozen=True)
class Topic:
    """One application of the credit grade: its values (codes strictest first, or a number), how a
    value is worded, and its column in the CRM interface file."""

    name: str
    name_zh: str
    name_en: str
    kind: str  # "code", "flag", "yuan" (more is more lenient) or "hours" (fewer is more lenient)
    words: Callable[[object], tuple[str, str]]
    arrow_type: str
    codes: tuple[str, ...] = ()  # for a "code": strictest first

    @property
    def crm_column(self) -> str:
        unit = {"yuan": "_yuan", "hours": "_hours"}.get(self.kind, "")
        return f"credit_{self.name}{unit}"

    def leniency(self, value) -> float:
        """Where a value stands from strict (low) to lenient (high)."""
        if self.kind == "code":
            return float(self.codes.index(value))
        if self.kind == "hours":
            return -float(value)
        return float(value)


def _table(words: dict) -> Callable[[object], tuple[str, str]]:
    return lambda value: words[value]


def _gift(yuan) -> tuple[str, str]:
    if not yuan:
        return "No goodwill gift.", "不予小额赠送。"
    return f"Goodwill gift up to {yuan} yuan.", f"可小额赠送，不超过{yuan}元。"


def _time_limit(hours) -> tuple[str, str]:
    return f"Close the complaint within {hours} hours.", f"{hours}小时内办结投诉。"


#: The applications of the credit grade, in the order an agent reads them.
TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(
            "verification",
            "查证",
            "Verification",
            "code",
            _table(
                {
                    "verify_escalate": (
                        "Verify the claim with the billing records before any refund; report to the "
                        "shift leader.",
                        "退费前须经计费记录查证，并上报值班长。",
                    ),
                    "verify": ("Verify the claim before any refund.", "退费前须先查证。"),
                    "standard": ("Check the claim as the standard process says.", "按标准流程核实诉求。"),
                    "light": ("Refund after a light check of the claim.", "简单核实后退费。"),
                    "after_refund": ("Verify after the refund.", "退费后再核实。"),
                }
            ),
            "string",
            ("verify_escalate", "verify", "standard", "light", "after_refund"),
        ),
        Topic(
            "refund_order",
            "退返顺序",
            "Refund order",
            "code",
            _table(
                {
                    "verify_first": ("Refund only once the claim is checked.", "先核实后退费。"),
                    "refund_first": ("Refund first, verify later.", "先退费后核实。"),
                }
            ),
            "string",
            ("verify_first", "refund_first"),
        ),
        Topic("gift_ceiling", "小额赠送上限", "Goodwill gift ceiling", "yuan", _gift, "int16"),
        Topic("time_limit", "处理时限", "Handling time limit", "hours", _time_limit, "int16"),
        Topic(
            "reopen_before_payment",
            "欠费停机重开",
            "Reopening before payment",
            "flag",
            _table(
                {
                    True: (
                        "A line suspended for arrears may be reopened before payment.",
                        "欠费停机可先开机后缴费。",
                    ),
                    False: (
                        "A line suspended for arrears is reopened only after payment.",
                        "欠费停机须缴费后开机。",
                    ),
                }
            ),
            "bool",
        ),
        Topic(
            "international_roaming",
            "国际漫游开通",
            "International roaming activation",
            "code",
            _table(
                {
                    "deposit_required": (
                        "International roaming only with a deposit.",
                        "开通国际漫游须预存款。",
                    ),
                    "standard": ("International roaming on the standard terms.", "按标准条件开通国际漫游。"),
                    "without_deposit": (
                        "International roaming may be activated without a deposit.",
                        "可免预存款开通国际漫游。",
                    ),
                }
            ),
            "string",
            ("deposit_required", "standard", "without_deposit"),
        ),
        Topic(
            "agent_priority",
            "接入10086人工",
            "Priority access to a 10086 agent",
            "flag",
            _table(
                {
                    True: ("Priority queue to a 10086 agent.", "优先接入10086人工服务。"),
                    False: ("Normal queue to a 10086 agent.", "按正常排队接入10086人工服务。"),
                }
            ),
            "bool",
        ),
        Topic(
            "customer_care",
            "客户关怀",
            "Customer care",
            "code",
            _table(
                {
                    "standard": ("Standard care.", "常规关怀。"),
                    "callback": ("Call the customer back once the complaint is closed.", "投诉办结后回访。"),
                    "manager_callback": (
                        "The account manager calls back; holiday greetings.",
                        "客户经理回访，并进行节日关怀。",
                    ),
                }
            ),
            "string",
            ("standard", "callback", "manager_callback"),
        ),
        Topic(
            "opportunity_marketing",
            "机会营销",
            "Opportunity marketing",
            "flag",
            _table(
                {
                    True: ("Opportunity marketing allowed on this call.", "可进行随销推荐。"),
                    False: ("No opportunity marketing on this call.", "本次通话不做随销推荐。"),
                }
            ),
            "bool",
        ),
    )
}
#: The summary an agent reads first; by default the words of the refund order (refund first) or
#: the verification, then of the gift ceiling and the time limit.
SUMMARY = "complaint_handling"
SUMMARY_OF = ("gift_ceiling", "time_limit")
#: A province's guidance section may name these, per grade.
OVERRIDABLE = (SUMMARY, *TOPICS)
#: What a goodwill gift ceiling (yuan) and a time limit (hours) may be set to.
GIFT_CEILING_RANGE = (0, 500)
TIME_LIMIT_RANGE = (1, 720)

_ORDER = (
    "verification",
    "refund_order",
    "gift_ceiling",
    "time_limit",
    "reopen_before_payment",
    "international_roaming",
    "agent_priority",
    "customer_care",
    "opportunity_marketing",
)
#: The group's defaults per credit grade (1 extremely poor .. 5 excellent), one value per topic in
#: ``_ORDER``: verification, refund order, gift ceiling (yuan), time limit (hours), reopening before
#: payment, international roaming, priority access to an agent, customer care, opportunity marketing.
CREDIT_HANDLING: dict[int, dict[str, object]] = {
    grade: dict(zip(_ORDER, row, strict=True))
    for grade, row in {
        1: ("verify_escalate", "verify_first", 0, 72, False, "deposit_required", False, "standard", False),
        2: ("verify", "verify_first", 0, 72, False, "deposit_required", False, "standard", False),
        3: ("standard", "verify_first", 0, 48, False, "standard", False, "standard", True),
        4: ("light", "verify_first", 10, 24, True, "without_deposit", True, "callback", True),
        5: ("after_refund", "refund_first", 30, 12, True, "without_deposit", True, "manager_callback", True),
    }.items()
}
assert all(set(h) == set(TOPICS) for h in CREDIT_HANDLING.values()), "every grade has every topic"
#: A verification that must come before the refund.
_VERIFY_BEFORE_REFUND = ("verify_escalate", "verify")

#: A sensitivity level that holds opportunity marketing back, whatever the grade allows.
SENSITIVE_LEVEL = "high"


def _own(config, grade: int):
    """The province file's section for a grade, or None."""
    return (getattr(config, "guidance", None) or {}).get(grade)


def values(grade: int, config=None) -> dict[str, object]:
    """The handling of a grade: the group's defaults with the province file's values."""
    out = dict(CREDIT_HANDLING[grade])
    own = _own(config, grade)
    for topic in TOPICS:
        override = getattr(own, topic, None)
        if override is not None and override.value is not None:
            out[topic] = override.value
    return out


def words(grade: int, topic: str, value, config=None) -> tuple[str, str]:
    """(English, Chinese) of a topic at a grade: the province's text where it gives one for the
    value in force, else the topic's words for the value."""
    override = getattr(_own(config, grade), topic, None)
    if override is not None and override.en is not None and value == values(grade, config)[topic]:
        return override.en, override.zh
    return TOPICS[topic].words(value)


def summary(grade: int, config=None) -> tuple[str, str]:
    """The complaint-handling sentence of a grade: the province's, or the words of its topics."""
    override = getattr(_own(config, grade), SUMMARY, None)
    if override is not None:
        return override.en, override.zh
    handling = values(grade, config)
    first = "refund_order" if handling["refund_order"] == "refund_first" else "verification"
    said = [words(grade, t, handling[t], config) for t in (first, *SUMMARY_OF)]
    return " ".join(en for en, _ in said), "".join(zh for _, zh in said)


def monotone_breaks(handling: Mapping[int, Mapping[str, object]]) -> list[str]:
    """Where a better grade gets stricter handling than the grade below it, or a topic contradicts
    another ([] when none): what a province file's guidance is refused for."""
    found = []
    grades = sorted(handling)
    for topic, t in TOPICS.items():
        for worse, better in zip(grades, grades[1:]):
            if t.leniency(handling[better][topic]) < t.leniency(handling[worse][topic]):
                found.append(
                    f"grade {better}'s {topic} ({handling[better][topic]}) is stricter than grade "
                    f"{worse}'s ({handling[worse][topic]}); a better grade never gets stricter handling"
                )
    for grade in grades:
        h = handling[grade]
        if h["refund_order"] == "refund_first" and h["verification"] in _VERIFY_BEFORE_REFUND:
            found.append(
                f"grade {grade}: refund_order refund_first contradicts verification {h['verification']} "
                "(verify before any refund)"
            )
    return found


def _always(answer: dict) -> bool:
    return True


def held_back(sensitive_levels: list) -> bool:
    """Whether a sensitivity level holds opportunity marketing back."""
    return any(level == SENSITIVE_LEVEL for level in sensitive_levels)


@dataclass(frozen=True)
class Handling:
    """Differentiated handling by grade, as a task declares it: the advice it adds to an answer
    and the columns it adds to the CRM file. ``sensitive``: tasks whose high level holds
    opportunity marketing back (the answer block's ``level``, the file's ``<task>_level``)."""

    task: str
    sensitive: tuple[str, ...] = ()

    def _grade(self, answer: dict) -> int:
        return answer[self.task]["code"]

    def _marketing(self, answer: dict, config) -> bool:
        allowed = bool(values(self._grade(answer), config)["opportunity_marketing"])
        levels = [(answer.get(t) or {}).get("level") for t in self.sensitive]
        return allowed and not held_back(levels)

    def _summary(self, answer: dict, config) -> tuple[str, str]:
        return summary(self._grade(answer), config)

    def _value(self, topic: str):
        if topic == "opportunity_marketing":
            return self._marketing
        return lambda answer, config: values(self._grade(answer), config)[topic]

    def _text(self, topic: str):
        def text(answer: dict, config) -> tuple[str, str]:
            grade = self._grade(answer)
            value = self._value(topic)(answer, config)
            if topic == "opportunity_marketing" and not value and values(grade, config)[topic]:
                return (
                    "No opportunity marketing: the customer is sensitive to tariffs or complaints.",
                    "客户话费或投诉敏感：本次通话不做随销推荐。",
                )
            return words(grade, topic, value, config)

        return text

    def advice(self, first_order: int) -> tuple[Advice, ...]:
        """The summary, then one item per topic, ordered from ``first_order``."""
        return (
            Advice(SUMMARY, first_order, _always, self._summary),
            *(
                Advice(topic, first_order + k, _always, self._text(topic), self._value(topic))
                for k, topic in enumerate(TOPICS, start=1)
            ),
        )

    def crm_fields(self) -> list[tuple[str, str]]:
        return [(t.crm_column, t.arrow_type) for t in TOPICS.values()]

    def crm_columns(self, grades: np.ndarray, config, columns: Mapping[str, np.ndarray]) -> dict:
        """Each customer's handling codes from their grade; ``columns``: the file's other columns
        (the sensitivity levels)."""
        grades = np.asarray(grades, dtype=int)
        by_grade = {g: values(g, config) for g in CREDIT_HANDLING}
        out = {}
        for topic, t in TOPICS.items():
            table = np.array([None, *(by_grade[g][topic] for g in sorted(by_grade))], dtype=object)
            out[t.crm_column] = table[grades]
        marketing = TOPICS["opportunity_marketing"].crm_column
        for task in self.sensitive:
            level = columns.get(f"{task}_level")
            if level is not None:
                out[marketing] = out[marketing] & (np.asarray(level, dtype=object) != SENSITIVE_LEVEL)
        return out


__all__ = [
    "Advice",
    "CREDIT_HANDLING",
    "Handling",
    "OVERRIDABLE",
    "SUMMARY",
    "TOPICS",
    "monotone_breaks",
    "summary",
    "values",
    "words",
]
