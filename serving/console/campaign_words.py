"""The campaign pages' own words in Chinese and English (``w.key`` in their templates)."""

from __future__ import annotations

from serving.console.words import Language

#: key -> (Chinese, English)
CAMPAIGN_WORDS: dict[str, tuple[str, str]] = {
    "definition": ("活动定义", "The campaign"),
    "name": ("活动名称（小写字母、数字、_ -）", "Name (lower case letters, digits, _ -)"),
    "purpose": ("活动目的", "Purpose"),
    "province": ("省份", "Province"),
    "start": ("开始日期", "Start"),
    "offer_zh": ("优惠内容（中文）", "Offer (Chinese)"),
    "offer_en": ("优惠内容（英文）", "Offer (English)"),
    "gift_yuan": ("小额赠送（元）", "Goodwill gift (yuan)"),
    "conditions": ("目标客户筛选", "Target customers"),
    "conditions_hint": (
        "每个条件都须满足；同一条件内勾选多项为任一即可；不勾选即不限。",
        "Every condition given must hold; within one, any value ticked; none ticked: no condition.",
    ),
    "brands": ("品牌", "Brands"),
    "customer_categories": ("客户类别", "Customer categories"),
    "churn_bands": ("离网风险", "Churn risk bands"),
    "tariff_sensitivity_levels": ("话费敏感度", "Tariff sensitivity"),
    "complaint_sensitivity_levels": ("投诉敏感度", "Complaint sensitivity"),
    "best_channels": ("最佳接触渠道", "Best channels"),
    "cities": ("城市（逗号分隔，可不填）", "Cities (comma-separated, optional)"),
    "credit_grade": ("信用等级范围", "Credit grades"),
    "from": ("从", "from"),
    "to": ("到", "to"),
    "indicator": ("指标条件", "Indicator condition"),
    "at_least": ("不低于", "at least"),
    "at_most": ("不高于", "at most"),
    "any": ("不限", "any"),
    "service": ("服务波次与限制", "Waves and limits"),
    "max_waves": ("最多波次", "Waves at most"),
    "days_between": ("波次间隔（天）", "Days between waves"),
    "contact_cap": ("90天接触上限", "Contact cap in 90 days"),
    "control_share": ("对照组比例（0-0.5）", "Control share (0-0.5)"),
    "preview": ("预览", "Preview"),
    "export": ("导出外呼名单", "Export for the outbound system"),
    "counts": ("人数", "Counts"),
    "customers": ("省内客户", "Customers of the province"),
    "selected": ("入选", "Selected"),
    "suppressed": ("排除", "Excluded"),
    "control": ("对照组", "Control group"),
    "to_contact": ("待接触", "To contact"),
    "snapshot": ("快照月份", "Snapshot"),
    "exclusions": ("按原因排除", "Exclusions by reason"),
    "reason": ("原因", "Reason"),
    "profile": ("入选客户画像", "Profile of the selection"),
    "exported": ("已导出", "Exported"),
    "download": ("下载外呼名单（CSV）", "Download the outbound list (CSV)"),
    "form_errors": ("活动定义有误", "The campaign has errors"),
    "campaigns": ("已导出的营销活动", "Exported campaigns"),
    "no_campaigns": ("暂无已导出的营销活动", "No exported campaign yet"),
    "report": ("响应报告", "Response report"),
    "unknown_campaign": ("此密钥查不到该营销活动", "This key knows no such campaign"),
    "as_of": ("截至", "as of"),
    "uplift": ("提升（接触组减对照组）", "Uplift (contacted minus control)"),
    "interval": ("95%置信区间", "95% interval"),
    "rate_contacted": ("接触组接受率", "Take-up of the contacted"),
    "rate_control": ("对照组接受率", "Take-up of the control group"),
    "best_frequency": ("最佳接触次数（90天）", "Best contact frequency (90 days)"),
    "by_wave": ("按波次", "By wave"),
    "by_channel": ("按渠道", "By channel"),
    "uplift_by_best_channel": ("按最佳渠道的提升", "Uplift by best channel"),
    "no_answers": ("尚无响应记录", "No answers recorded yet"),
    "events": ("响应事件", "Answers recorded"),
}


def campaign_words(lang: Language) -> dict[str, str]:
    """The campaign pages' words in ``lang``."""
    k = 0 if lang == "zh" else 1
    return {key: pair[k] for key, pair in CAMPAIGN_WORDS.items()}
