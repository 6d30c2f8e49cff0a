"""Explanations: global SHAP importance per model, and reason codes per customer.

Per-customer contributions are XGBoost's native TreeSHAP (``pred_contribs``), fast
enough for serving; the global summary uses the shap library on a sample. Reason
codes name indicators in business language, Chinese and English, from the library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.model import TaskModel

#: Units and codes as an agent reads them in Chinese.
_UNIT_ZH = {
    "yuan": "元",
    "months": "个月",
    "minutes": "分钟",
    "complaints": "次",
    "refunds": "次",
    "days": "天",
    "messages": "条",
    "inquiries": "次",
    "contacts": "次",
    "services": "项",
    "numbers": "个",
    "ports": "个",
    "level": "级",
    "score 1-5": "分",
    "MB": "MB",
}
_CODE_ZH = {
    "individual": "个人客户",
    "group_member": "集团客户",
    "vip_silver": "银卡",
    "vip_gold": "金卡",
    "vip_diamond": "钻卡",
    "gotone": "全球通",
    "mzone": "动感地带",
    "easyown": "神州行",
    "prepaid": "预付费",
    "postpaid_cash": "后付费现金",
    "bank_debit": "银行托收",
    "feature_phone": "功能机",
    "smartphone_4g": "4G智能机",
    "smartphone_5g": "5G智能机",
    "unknown": "未知",
}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _format(value, unit: str) -> str:
    if _missing(value):
        return "unknown"
    if isinstance(value, (float, np.floating)):
        return f"{value:,.2f} {unit}".strip()
    return f"{value} {unit}".strip() if unit not in ("code", "flag") else str(value)


def _format_zh(value, unit: str) -> str:
    if _missing(value):
        return "未知"
    if unit == "code":
        return _CODE_ZH.get(str(value), str(value))
    if unit == "flag":
        return "是" if value else "否"
    number = f"{value:,.2f}" if isinstance(value, (float, np.floating)) else str(value)
    return f"{number}{_UNIT_ZH.get(unit, '')}"


def value_words(value, unit: str, lang: str) -> str:
    """An indicator's value as the reasons word it (``2,510.80 MB``; ``银行托收``), for pages
    that show indicators beside the reasons (the console's customer view)."""
    return _format_zh(value, unit) if lang == "zh" else _format(value, unit)


def reasons(
    model: TaskModel,
    indicators: pd.DataFrame,
    top: int = 3,
    contributions: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
) -> list[list[dict]]:
    """The ``top`` indicators that moved each customer's prediction most, as reason codes.

    For the channel model, the reasons are those of the most likely channel.
    """
    t = model.task
    contrib = model.contributions(indicators) if contributions is None else contributions
    # a ranking has a set per class: its kind picks the one the customer is told
    contrib = t.kind.explained(
        contrib, model.probabilities(indicators) if probabilities is None else probabilities
    )
    contrib = contrib[:, :-1]  # drop the bias column
    names = t.feature_names
    by_id = {i.id: i for i in t.indicators}  # a province's model may have custom indicators
    columns = {name: indicators[name].tolist() for name in names}
    out = []
    for row in range(len(indicators)):
        order = [j for j in np.argsort(-np.abs(contrib[row]))[:top] if abs(contrib[row, j]) > 1e-9]
        items = []
        for j in order:
            ind = by_id[names[j]]
            value = columns[ind.id][row]
            up, down = model.effect
            en, zh = up if contrib[row, j] > 0 else down
            shown = _format(value, ind.unit)
            items.append(
                {
                    "code": f"{t.name}:{ind.id}:{'+' if contrib[row, j] > 0 else '-'}",
                    "indicator": ind.id,
                    "value": None if shown == "unknown" else shown,
                    "contribution": float(contrib[row, j]),
                    "text_en": f"{ind.name_en} {shown} {en}",
                    "text_zh": f"{ind.name_zh}{_format_zh(value, ind.unit)}，{zh}",
                }
            )
        out.append(items)
    return out


def global_importance(
    model: TaskModel, indicators: pd.DataFrame, sample: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Mean |SHAP| per indicator on a sample, with the library's names."""
    rows = indicators.sample(min(sample, len(indicators)), random_state=seed)
    values = np.asarray(_shap_values(model, rows))
    if values.ndim == 3:  # multiclass: (n, features, classes) -> mean over classes
        values = np.abs(values).mean(axis=2)
    importance = np.abs(values).mean(axis=0)
    frame = pd.DataFrame({"indicator": model.task.feature_names, "mean_abs_shap": importance})
    by_id = {i.id: i for i in model.task.indicators}
    frame["name_en"] = [by_id[i].name_en for i in frame["indicator"]]
    frame["name_zh"] = [by_id[i].name_zh for i in frame["indicator"]]
    return frame.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def _encoded(model: TaskModel, rows: pd.DataFrame) -> pd.DataFrame:
    from training.data import encode

    return encode(rows, model.task)


def _shap_values(model: TaskModel, rows: pd.DataFrame) -> np.ndarray:
    """SHAP values through the shap library; a DMatrix carries the categorical indicators."""
    import shap
    import xgboost as xgb

    matrix = xgb.DMatrix(_encoded(model, rows), enable_categorical=True)
    return shap.TreeExplainer(model.booster).shap_values(matrix)


def shap_summary_plot(model: TaskModel, indicators: pd.DataFrame, path: Path, sample: int = 2000) -> Path:
    """The SHAP summary (beeswarm) plot of a sample, saved as PNG."""
    import matplotlib.pyplot as plt
    import shap

    rows = indicators.sample(min(sample, len(indicators)), random_state=0)
    values = np.asarray(_shap_values(model, rows))
    if values.ndim == 3:  # one panel: the contributions to the most likely class
        best = model.probabilities(rows).argmax(axis=1)
        values = values[np.arange(len(best)), :, best]
    X = _encoded(model, rows)
    data = np.column_stack(
        [
            X[c].cat.codes.to_numpy(float)
            if isinstance(X[c].dtype, pd.CategoricalDtype)
            else X[c].to_numpy(float)
            for c in X.columns
        ]
    )
    explanation = shap.Explanation(values=values, data=data, feature_names=list(X.columns))
    plt.figure()
    shap.plots.beeswarm(explanation, max_display=15, show=False)
    plt.title(f"{model.task.name_en}: SHAP summary")
    plt.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.savefig(path, dpi=90)
    plt.close("all")
    return path
