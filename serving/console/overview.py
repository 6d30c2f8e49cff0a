"""The managers' overview (信用总览 / 多维分析 / 即席查询), as the 2009 specification's views name them.

Every customer of a province-month, graded as the batch file grades them (``serving.batch``: the
offline store's month-end snapshot scored by the province's champions, cut-offs and black-list
cap), then counted three ways:

* **credit overview**: customers per grade, with their share;
* **multidimensional analysis**: grades by one dimension (province, customer category, brand,
  payment method), drilling national -> province;
* **ad-hoc query**: how many customers match a combination of fixed choices.

Counts only: no phone number leaves this page. A key scoped to one province sees that province
and no national figure. Every input is one of fixed choices (``read_choices``); anything else is
refused with 422 and the page's defaults. ``grade_overview``, ``cross_table`` and ``adhoc_count``
are pure (a frame in, plain dicts out); ``graded_customers`` does the I/O and keeps each
province-month's grades in memory for the champions that made them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import pandas as pd

from core import indicators as lib
from core.tasks import CREDIT_GRADES
from features.build import offline_snapshots
from serving.batch import interface_rows, snapshot_chunks
from serving.console.pages import Page, Visit
from serving.console.words import Language
from serving.security import ALL_PROVINCES, may_score
from training.explain import value_words

#: Dimensions of the multidimensional analysis, in the order the form lists them.
DIMENSIONS = ("province", "customer_category", "brand", "payment_method")
#: Choices of the ad-hoc query: each field's allowed values ("" is any).
QUERY_FIELDS = {
    "customer_category": lib.BY_ID["customer_category"].codes,
    "brand": lib.BY_ID["brand"].codes,
    "payment_method": lib.BY_ID["payment_method"].codes,
    "credit_grade": tuple(str(code) for code, _, _ in CREDIT_GRADES),
    "complaints_3m_at_least": ("1", "2", "3", "5"),
}
#: Columns kept per customer (the grade and what the views count by).
COLUMNS = ["province", "credit_grade", "customer_category", "brand", "payment_method", "complaint_count_3m"]
#: This page's own words, (Chinese, English).
WORDS = {
    "credit_overview": ("信用总览", "Credit overview"),
    "analysis": ("多维分析", "Multidimensional analysis"),
    "adhoc": ("即席查询", "Ad-hoc query"),
    "month": ("账期", "Month"),
    "drill": ("范围", "Scope"),
    "national": ("全国", "National"),
    "dimension": ("维度", "Dimension"),
    "grade": ("信用等级", "Credit grade"),
    "customers": ("客户数", "Customers"),
    "share": ("占比", "Share"),
    "total": ("合计", "Total"),
    "any": ("不限", "Any"),
    "show": ("查看", "Show"),
    "count": ("统计", "Count"),
    "matching": ("符合条件的客户", "Customers matching"),
    "complaints_3m_at_least": ("近3月投诉不少于", "Complaints in 3 months at least"),
    "complaints_3m": ("近3月投诉合计", "Complaints in 3 months"),
    "bad_choice": ("选项无效，已显示默认视图", "Not one of the choices: the default view is shown"),
    "no_data": ("该范围没有指标快照", "No indicator snapshot in this scope"),
    "graded_by": ("按批量评分口径：月末指标快照、本省冠军模型与分档", "Graded as the batch file grades"),
    "province": ("省份", "Province"),
}
#: Province-months kept graded in memory (a province of 3,000 customers is ~0.3 MB).
CACHE_SIZE = 32


def word(key: str, lang: Language) -> str:
    zh, en = WORDS[key]
    return zh if lang == "zh" else en


def grade_label(code: int, lang: Language) -> str:
    for c, zh, en in CREDIT_GRADES:
        if c == code:
            return zh if lang == "zh" else en
    raise KeyError(code)


def value_label(dimension: str, value: str, lang: Language) -> str:
    """A dimension's value in the business's words (``全球通``, ``GoTone``: the code in English)."""
    return value if dimension == "province" else value_words(value, "code", lang)


# -- pure: a frame of graded customers in, plain dicts out -----------------------------------------


def grade_overview(frame: pd.DataFrame, lang: Language = "zh") -> dict:
    """Customers per credit grade (worst first) with their share, and the total."""
    total = len(frame)
    counts = frame["credit_grade"].value_counts()
    grades = [
        {
            "code": code,
            "label": grade_label(code, lang),
            "count": int(counts.get(code, 0)),
            "share": (counts.get(code, 0) / total) if total else 0.0,
        }
        for code, _, _ in CREDIT_GRADES
    ]
    return {
        "customers": total,
        "grades": grades,
        "complaints_3m": int(frame["complaint_count_3m"].sum()) if total else 0,
    }


def cross_table(frame: pd.DataFrame, dimension: str, lang: Language = "zh") -> dict:
    """Customers by ``dimension`` (rows, in the library's order of codes) and credit grade
    (columns, worst first), with row and column totals."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension {dimension!r} is not one of {DIMENSIONS}")
    codes = [code for code, _, _ in CREDIT_GRADES]
    table = pd.crosstab(frame[dimension], frame["credit_grade"]).reindex(columns=codes, fill_value=0)
    order = lib.BY_ID[dimension].codes if dimension != "province" else sorted(table.index)
    rows = [
        {
            "value": value,
            "label": value_label(dimension, value, lang),
            "counts": [int(n) for n in table.loc[value]],
            "total": int(table.loc[value].sum()),
        }
        for value in order
        if value in table.index
    ]
    return {
        "dimension": dimension,
        "grades": [{"code": c, "label": grade_label(c, lang)} for c in codes],
        "rows": rows,
        "totals": [int(n) for n in table.sum(axis=0)],
        "total": int(table.to_numpy().sum()),
    }


def adhoc_count(frame: pd.DataFrame, query: dict[str, str]) -> dict:
    """How many customers match every chosen field of ``query`` (validated by ``read_choices``;
    an empty value matches all), their share of the scope and their complaints in 3 months."""
    keep = pd.Series(True, index=frame.index)
    for name, value in query.items():
        if not value:
            continue
        if name == "credit_grade":
            keep &= frame["credit_grade"] == int(value)
        elif name == "complaints_3m_at_least":
            keep &= frame["complaint_count_3m"] >= int(value)
        else:
            keep &= frame[name] == value
    matched = frame[keep]
    return {
        "count": len(matched),
        "share": len(matched) / len(frame) if len(frame) else 0.0,
        "complaints_3m": int(matched["complaint_count_3m"].sum()),
    }


def read_choices(form: dict[str, str] | None, months: list[str], provinces: list[str]) -> tuple[dict, bool]:
    """The page's choices from a form: month, drill (``*`` national or a province), dimension and the
    ad-hoc fields, each one of its fixed choices. Returns (choices, valid); an invalid form gives
    the defaults (latest month, the widest scope, by province or category) and False."""
    national = len(provinces) > 1
    defaults = {
        "month": months[-1] if months else "",
        "drill": ALL_PROVINCES if national else (provinces[0] if provinces else ""),
        "dimension": "province" if national else "customer_category",
        **{name: "" for name in QUERY_FIELDS},
    }
    if not form:
        return defaults, True
    allowed = {
        "month": months,
        "drill": [*([ALL_PROVINCES] if national else []), *provinces],
        "dimension": list(DIMENSIONS),
        **{name: ["", *values] for name, values in QUERY_FIELDS.items()},
    }
    choices = {}
    for name, values in allowed.items():
        value = form.get(name, defaults[name])
        if value not in values:
            return defaults, False
        choices[name] = value
    return choices, True


# -- I/O: the graded customers of a province-month ---------------------------------------------------

_cache: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_cache_lock = threading.Lock()


def graded_customers(backend, province: str, month: str, chunk_rows: int = 50_000) -> pd.DataFrame:
    """The province-month's customers with their credit grade (``COLUMNS``), as the batch file
    grades them; kept in memory per champions' versions, so a new champion grades again."""
    models = backend.models.for_province(province)
    key = (str(backend.settings.offline_dir), province, month, tuple(sorted(models.versions.items())))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    parts = []
    for chunk in snapshot_chunks(backend.settings, province, month, chunk_rows):
        graded = interface_rows(models, chunk, month, "").to_pandas()
        parts.append(
            pd.DataFrame(
                {
                    "province": chunk["province"].astype(str).to_numpy(),
                    "credit_grade": graded["credit_grade"].to_numpy(),
                    **{c: chunk[c].to_numpy() for c in COLUMNS[2:]},
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    with _cache_lock:
        _cache[key] = frame
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return frame


def scope_snapshots(backend, scope: str) -> tuple[list[str], list[str]]:
    """The provinces the key may see that have snapshots, and those provinces' months."""
    pairs = [(p, m) for p, m in offline_snapshots(backend.settings.offline_dir) if may_score(scope, p)]
    return sorted({p for p, _ in pairs}), sorted({m for _, m in pairs})


def handle(visit: Visit) -> dict:
    """The three views for the chosen month and drill; the defaults for a GET."""
    lang = visit.lang
    provinces, months = scope_snapshots(visit.backend, visit.scope)
    choices, valid = read_choices(visit.form, months, provinces)
    context: dict = {
        "w": {k: word(k, lang) for k in WORDS},
        "choices": choices,
        "months": months,
        "drills": [
            {"value": ALL_PROVINCES, "label": word("national", lang)}
            if p == ALL_PROVINCES
            else {"value": p, "label": p}
            for p in ([ALL_PROVINCES] if len(provinces) > 1 else []) + provinces
        ],
        "dimensions": [
            {"value": d, "label": word("province", lang) if d == "province" else _name(d, lang)}
            for d in DIMENSIONS
        ],
        "query_fields": [
            {
                "name": name,
                "label": word("grade", lang)
                if name == "credit_grade"
                else word(name, lang)
                if name in WORDS
                else _name(name, lang),
                "options": [{"value": v, "label": _option_label(name, v, lang)} for v in values],
            }
            for name, values in QUERY_FIELDS.items()
        ],
        "overview": None,
    }
    if not valid:
        context.update(error="bad_choice", status=422)
    if not provinces:
        context["error"] = "no_data"
        return context
    drilled = provinces if choices["drill"] == ALL_PROVINCES else [choices["drill"]]
    present = {p for p, _ in offline_snapshots(visit.backend.settings.offline_dir, month=choices["month"])}
    frames = [graded_customers(visit.backend, p, choices["month"]) for p in drilled if p in present]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    query = {name: choices[name] for name in QUERY_FIELDS}
    context.update(
        overview=grade_overview(frame, lang),
        table=cross_table(frame, choices["dimension"], lang),
        adhoc=adhoc_count(frame, query) if any(query.values()) else None,
    )
    return context


def _name(indicator: str, lang: Language) -> str:
    found = lib.BY_ID[indicator]
    return found.name_zh if lang == "zh" else found.name_en


def _option_label(name: str, value: str, lang: Language) -> str:
    if name == "credit_grade":
        return f"{value} {grade_label(int(value), lang)}"
    if name == "complaints_3m_at_least":
        return value
    return value_words(value, "code", lang)


PAGE = Page("/overview", "信用总览", "Credit overview", "overview.html", handle)

__all__ = ["PAGE", "adhoc_count", "cross_table", "grade_overview", "graded_customers", "read_choices"]
