"""A province's own customer table for bring-your-own-data tests: the tiny world's indicators
and labels of one province, under column names and codes nothing like the library's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core import indicators as lib

#: Library indicator -> the province's column name.
COLUMNS = {
    "customer_category": "KH_LB",
    "brand": "PP",
    "payment_method": "JF_FS",
    "tenure_months": "ZW_SC",
    "monthly_consumption": "XF_JE",
    "arrears_months_12m": "QF_YS",
    "complaint_count_3m": "TS_CS_3Y",
    "refund_count_12m": "TF_CS",
    "gift_count_12m": "ZS_CS",
    "gift_amount_12m": "ZS_JE",
    "complaint_satisfaction": "MYD",
    "red_list_flag": "HONG_MD",
    "black_list_flag": "HEI_MD",
    "arpu_3m": "ARPU3",
    "bill_change_ratio": "HF_BD",
    "arrears_amount": "QF_JE",
    "arrears_suspensions_12m": "TJ_CS",
    "days_since_last_complaint": "ZJ_TS_TS",
    "voice_minutes": "YY_SC",
    "data_mb": "LL_MB",
    "roaming_minutes_3m": "MY_SC",
    "billing_inquiry_count_3m": "CX_CS",
}
CATEGORY_ZH = {
    "individual": "个人",
    "group_member": "集团",
    "vip_silver": "银卡",
    "vip_gold": "金卡",
    "vip_diamond": "钻卡",
}
BRAND_ZH = {"gotone": "全球通", "mzone": "动感地带", "easyown": "神州行"}

PROVINCE_FILE = """\
province: ZJ
optional_indicators: []
custom_indicators:
  - id: local_value_score
    name_zh: 本地价值分
    name_en: Local value score
    definition: the province's own value score of the customer
    column: ZDY_PF
    kind: float
    valid_range: [0, 50]
    tasks: [credit_grade]
  - id: local_segment
    name_zh: 本地客户分群
    name_en: Local customer segment
    definition: the province's own segment of the customer
    column: ZDY_FQ
    kind: category
    codes: [youth, family, business, senior]
    tasks: [credit_grade, churn]
"""
#: The province's codes of its own segment (column ZDY_FQ) -> the province file's codes.
SEGMENT_ZH = {"youth": "青年", "family": "家庭", "business": "商务", "senior": "银发"}

MAPPING = """\
province: ZJ
source:
  path: {source}
msisdn: SHOUJI_HAO
month: TJ_YF
columns:
{columns}
labels:
  XY_BL: credit_grade
  LS_BZ: churn
codes:
  customer_category:
    {{个人: individual, 集团: group_member, 银卡: vip_silver, 金卡: vip_gold, 钻卡: vip_diamond}}
  brand: {{全球通: gotone, 动感地带: mzone, 神州行: easyown}}
  local_segment: {{青年: youth, 家庭: family, 商务: business, 银发: senior}}
"""


def own_table(offline_dir: Path, truth_dir: Path, province: str) -> pd.DataFrame:
    """One row per customer and month: the province's columns, Chinese codes, YYYYMM months."""
    frames = []
    for f in sorted((offline_dir / "profile").glob(f"{province}_*.parquet")):
        month = f.stem.split("_", 1)[1]
        parts = [
            pd.read_parquet(offline_dir / s / f.name)
            .drop(columns=["event_timestamp", "created_timestamp"])
            .set_index("msisdn")
            for s in lib.SUBJECTS
        ]
        frames.append(pd.concat(parts, axis=1).reset_index().assign(month=month))
    indicators = pd.concat(frames, ignore_index=True)
    labels = pd.read_parquet(truth_dir / "labels" / f"{province}.parquet")
    rows = indicators.merge(
        labels[["msisdn", "month", "credit_bad_event", "churned_next_month"]], on=["msisdn", "month"]
    )
    out = rows[["msisdn", "month", *COLUMNS]].rename(
        columns={"msisdn": "SHOUJI_HAO", "month": "TJ_YF", **COLUMNS}
    )
    out["TJ_YF"] = out["TJ_YF"].str.replace("-", "")
    out["KH_LB"] = out["KH_LB"].map(CATEGORY_ZH)
    out["PP"] = out["PP"].map(BRAND_ZH)
    # 信用不良: a bad credit event followed (empty where the outcome has not matured yet)
    out["XY_BL"] = rows["credit_bad_event"].map({1.0: "Y", 0.0: "N"})
    out["LS_BZ"] = rows["churned_next_month"].map({1: "Y", 0: "N"})
    out["ZDY_PF"] = (rows["monthly_consumption"] // 10).clip(0, 50)
    segment = np.select(
        [rows["brand"] == "mzone", rows["brand"] == "gotone", rows["tenure_months"] >= 120],
        ["youth", "business", "senior"],
        "family",
    )
    out["ZDY_FQ"] = pd.Series(segment, index=out.index).map(SEGMENT_ZH)
    return out


def write_case(world, directory: Path, province: str = "SC") -> Path:
    """The CSV, the mapping beside it and ZJ's province file; returns the mapping's path."""
    directory.mkdir(parents=True, exist_ok=True)
    own_table(world.settings.offline_dir, world.settings.truth_dir, province).to_csv(
        directory / "zj_customers.csv", index=False
    )
    columns = "\n".join(f"  {theirs}: {ours}" for ours, theirs in COLUMNS.items())
    mapping = directory / "mapping.yaml"
    mapping.write_text(MAPPING.format(source="zj_customers.csv", columns=columns))
    return mapping
