"""The console's own words in Chinese and English (the business's words come with the answers)."""

from __future__ import annotations

from typing import Literal

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")


class Vocabulary:
    """A page's words, key -> (Chinese, English): every page's table is one of these, beside the
    page (``CONSOLE`` here: the words every page shares). ``word`` is one word in a language;
    ``in_language`` the whole table in one, as the templates read it (``w.key``)."""

    def __init__(self, pairs: dict[str, tuple[str, str]]):
        self.pairs = pairs

    def __contains__(self, key: str) -> bool:
        return key in self.pairs

    def word(self, key: str, lang: Language) -> str:
        zh, en = self.pairs[key]
        return zh if lang == "zh" else en

    def in_language(self, lang: Language) -> dict[str, str]:
        return {key: self.word(key, lang) for key in self.pairs}


#: The words every page shares (the frame, sign-in, the customer view).
CONSOLE = Vocabulary(
    {
        "console": ("客户服务分析控制台", "Customer service console"),
        "sign_in": ("登录", "Sign in"),
        "sign_out": ("退出", "Sign out"),
        "api_key": ("API密钥", "API key"),
        "sign_in_hint": (
            "用分配给您的API密钥登录；密钥只用于本次登录，不会保存在浏览器中。",
            "Sign in with the API key you were given; it is checked once and never kept in the browser.",
        ),
        "signed_in_as": ("当前密钥", "Signed in as"),
        "all_provinces": ("全部省份", "all provinces"),
        "language": ("English", "中文"),
        "msisdn": ("手机号码", "Mobile number"),
        "search": ("查询", "Look up"),
        "msisdn_hint": ("11位手机号码，如13812342343", "11 digits, e.g. 13812342343"),
        "warnings": ("注意", "Take care"),
        "no_warnings": ("无特别提示", "Nothing to take care of"),
        "guidance": ("处理建议", "Handling guidance"),
        "evaluations": ("客户评价", "Evaluations"),
        "reasons": ("原因", "Why"),
        "population_average": ("全网平均", "population average"),
        "retention": ("保有名单客户", "on the retention list"),
        "indicators": ("客户指标", "Indicators"),
        "features_as_of": ("指标时间", "Indicators as of"),
        "models": ("答复模型", "Models that answered"),
        "answered_from": ("答复方式", "Answered from"),
        "latest_complaint": ("最近投诉日期", "Latest complaint"),
        "other_complaints_12m": ("近12月其他投诉", "Other complaints, 12 months"),
        "none": ("无", "none"),
        "outcome": ("记录投诉处理结果", "Record the complaint's handling outcome"),
        "outcome_hint": (
            "处理结果回传分析系统，作为模型学习的依据。",
            "The outcome goes back to the platform as the evidence its models learn from.",
        ),
        "work_order_id": ("工单号", "Work order"),
        "verified": ("核实结果", "Verified"),
        "founded": ("属实", "founded"),
        "unfounded": ("不实", "unfounded"),
        "refunded_amount": ("退费金额（元）", "Refunded (yuan)"),
        "gift_amount": ("小额赠送（元）", "Goodwill gift (yuan)"),
        "handling_hours": ("处理时长（小时）", "Handling time (hours)"),
        "satisfaction": ("满意度（1-5，可不填）", "Satisfaction (1-5, optional)"),
        "record": ("提交", "Record"),
        "stored": ("已保存", "Stored"),
        "duplicate": ("此前已保存，未重复记录", "Already stored before; not stored twice"),
        "conflict": ("该工单已记录为其他内容，未保存", "This work order was recorded otherwise; not stored"),
        "unknown_customer": (
            "此密钥查不到该客户：不是（本省）客户，或尚未加载",
            "This key knows no such customer: not a subscriber (of the key's province), or not loaded yet",
        ),
        "invalid_msisdn": (
            "请输入11位手机号码，如13812342343",
            "Enter an 11-digit mobile number, e.g. 13812342343",
        ),
        "store_unavailable": (
            "指标库暂时无法访问，请稍后重试",
            "The indicator store is not answering; retry shortly",
        ),
        "session_expired": (
            "会话已过期或密钥已失效，请重新登录",
            "Your session ended or the key is no longer valid; sign in again",
        ),
        "csrf": ("表单已过期，请重新提交", "The form expired; submit it again"),
        "bad_form": ("无法读取表单", "The form could not be read"),
        "not_found": ("没有此页面", "No such page"),
    }
)


def words(lang: Language):
    """``t("key")`` for templates: the key's text in ``lang`` (the key itself if unknown, so a
    missing word shows on the page instead of failing it)."""

    def t(key: str) -> str:
        return CONSOLE.word(key, lang) if key in CONSOLE else key

    return t
