"""The managers' overview (信用总览 / 多维分析 / 即席查询), as the 2009 specification's views name them.

Every customer of a province-month, graded as the batch file grades them (``serving.batch``: the
offline store's month-end snapshot scored by the province's champions, cut-offs and black-list
cap), then counted three ways:

* **credit overview**: customers per grade, with their share;
* **multidimensional analysis**: grades and churn bands by one dimension (province, city,
  customer category, brand, payment method), drilling national -> province -> city (the city is the
  subscriber master's, ``raw/subscribers``; an empty one is "unknown");
* **region comparison**: the provinces (national) or a province's cities side by side;
* **trend**: grade and churn band shares per month, over the months the offline store has;
* **ad-hoc query**: how many customers match a combination of fixed choices;
* **export**: the current table as CSV (``export_csv``), same choices, same scope.

Charts are plotly figures (JSON in the page, drawn by ``static/figures.js``); every chart has its
counts in a table beside it.

Counts only: no phone number leaves this page. A key scoped to one province sees that province
and no national figure. Every input is one of fixed choices (``read_choices``); anything else is
refused with 422 and the page's defaults. ``grade_overview``, ``cross_table`` and ``adhoc_count``
are pure (a frame in, plain dicts out); ``graded_customers`` does the I/O and keeps each
province-month's grades in memory for the champions that made them.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.api.types import union_categoricals

from core import indicators as lib
from core.tasks import CHURN_BANDS, CREDIT_GRADES
from features.build import offline_snapshots
from features.schemas import partition_path
from serving.batch import interface_rows, snapshot_chunks
from serving.console.campaigns import figure_json
from serving.console.pages import Page, Visit
from serving.console.words import Language, Vocabulary
from serving.security import ALL_PROVINCES, may_score
from training.explain import value_words

#: Dimensions of the multidimensional analysis, in the order the form lists them.
DIMENSIONS = ("province", "city", "customer_category", "brand", "payment_method")
#: What the tables count: the credit grade and the churn band.
MEASURES = ("credit_grade", "churn_band")
#: Churn bands, lowest risk first (``core.tasks.CHURN_BANDS``), and a city the master leaves empty.
BANDS = tuple(en for _, en, _ in CHURN_BANDS)
UNKNOWN_CITY = "unknown"
#: Separates a drill's province and city: ``GD/Guangzhou``.
CITY_SEP = "/"
#: Choices of the ad-hoc query: each field's allowed values ("" is any).
QUERY_FIELDS = {
    "customer_category": lib.BY_ID["customer_category"].codes,
    "brand": lib.BY_ID["brand"].codes,
    "payment_method": lib.BY_ID["payment_method"].codes,
    "credit_grade": tuple(str(code) for code, _, _ in CREDIT_GRADES),
    "churn_band": BANDS,
    "complaints_3m_at_least": ("1", "2", "3", "5"),
}
#: Columns kept per customer (the grade and what the views count by).
COLUMNS = [
    "province",
    "credit_grade",
    "churn_band",
    "city",
    "customer_category",
    "brand",
    "payment_method",
    "complaint_count_3m",
]
#: Columns kept as categories (their values repeat: counting them is several times faster).
CATEGORICAL = ["province", "churn_band", "city", "customer_category", "brand", "payment_method"]
#: This page's own words, (Chinese, English).
WORDS = Vocabulary(
    {
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
        "city": ("地市", "City"),
        "unknown": ("未知", "unknown"),
        "churn_band": ("离网风险", "Churn band"),
        "bands": ("离网风险分布", "Churn bands"),
        "comparison": ("区域对比", "Region comparison"),
        "trend": ("趋势", "Trend"),
        "export": ("导出当前表 (CSV)", "Export this table (CSV)"),
        "matching_col": ("符合即席条件", "Matching the ad-hoc query"),
    }
)
#: Province-months kept graded in memory (a province of 3,000 customers is ~0.3 MB).
CACHE_SIZE = 32
#: Months the trend shows (the latest).
TREND_MONTHS = 12


def grade_label(code: int, lang: Language) -> str:
    for c, zh, en in CREDIT_GRADES:
        if c == code:
            return zh if lang == "zh" else en
    raise KeyError(code)


def band_label(band: str, lang: Language) -> str:
    for _, en, zh in CHURN_BANDS:
        if en == band:
            return zh if lang == "zh" else en
    raise KeyError(band)


def measure_codes(measure: str) -> list:
    if measure == "credit_grade":
        return [code for code, _, _ in CREDIT_GRADES]
    if measure == "churn_band":
        return list(BANDS)
    raise ValueError(f"measure {measure!r} is not one of {MEASURES}")


def measure_label(measure: str, code, lang: Language) -> str:
    return grade_label(code, lang) if measure == "credit_grade" else band_label(code, lang)


def value_label(dimension: str, value: str, lang: Language, one_province: bool = False) -> str:
    """A dimension's value in the business's words (``全球通``, ``GoTone``: the code in English); a
    city is ``GD · Guangzhou``, or ``Guangzhou`` within one province."""
    if dimension == "province":
        return value
    if dimension == "city":
        province, _, city = value.partition(CITY_SEP)
        name = WORDS.word("unknown", lang) if city == UNKNOWN_CITY else city
        return name if one_province else f"{province} · {name}"
    return value_words(value, "code", lang)


# -- pure: a frame of graded customers in, plain dicts out -----------------------------------------


def distribution(frame: pd.DataFrame, measure: str, lang: Language = "zh") -> list[dict]:
    """Customers per grade (worst first) or churn band (lowest first), with their share."""
    total = len(frame)
    counts = frame[measure].value_counts()
    return [
        {
            "code": code,
            "label": measure_label(measure, code, lang),
            "count": int(counts.get(code, 0)),
            "share": (counts.get(code, 0) / total) if total else 0.0,
        }
        for code in measure_codes(measure)
    ]


def grade_overview(frame: pd.DataFrame, lang: Language = "zh") -> dict:
    """Customers per credit grade (worst first) with their share, and the total; the churn bands
    beside them when the frame has them."""
    total = len(frame)
    view = {
        "customers": total,
        "grades": distribution(frame, "credit_grade", lang),
        "complaints_3m": int(frame["complaint_count_3m"].sum()) if total else 0,
    }
    if "churn_band" in frame:
        view["bands"] = distribution(frame, "churn_band", lang)
    return view


def cross_table(
    frame: pd.DataFrame, dimension: str, lang: Language = "zh", measure: str = "credit_grade"
) -> dict:
    """Customers by ``dimension`` (rows, in the library's order of codes; provinces and cities
    sorted) and credit grade (columns, worst first) or churn band, with row and column totals."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension {dimension!r} is not one of {DIMENSIONS}")
    codes = measure_codes(measure)
    if len(frame):
        counts = frame.groupby([dimension, measure], observed=True).size().unstack(fill_value=0)
        table = counts.reindex(columns=codes, fill_value=0)
        table = table[table.sum(axis=1) > 0]
    else:
        table = pd.DataFrame(columns=codes, dtype=int)
    order = sorted(table.index) if dimension in ("province", "city") else lib.BY_ID[dimension].codes
    one_province = frame["province"].nunique() <= 1
    rows = [
        {
            "value": value,
            "label": value_label(dimension, value, lang, one_province),
            "counts": [int(n) for n in table.loc[value]],
            "total": int(table.loc[value].sum()),
        }
        for value in order
        if value in table.index
    ]
    columns = [{"code": c, "label": measure_label(measure, c, lang)} for c in codes]
    return {
        "dimension": dimension,
        "measure": measure,
        "columns": columns,
        "grades": columns,
        "rows": rows,
        "totals": [int(n) for n in table.sum(axis=0)],
        "total": int(table.to_numpy().sum()),
    }


def query_mask(frame: pd.DataFrame, query: dict[str, str]) -> pd.Series:
    """The customers matching every chosen field of ``query`` (an empty value matches all)."""
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
    return keep


def adhoc_count(frame: pd.DataFrame, query: dict[str, str]) -> dict:
    """How many customers match every chosen field of ``query`` (validated by ``read_choices``;
    an empty value matches all), their share of the scope and their complaints in 3 months."""
    matched = frame[query_mask(frame, query)]
    return {
        "count": len(matched),
        "share": len(matched) / len(frame) if len(frame) else 0.0,
        "complaints_3m": int(matched["complaint_count_3m"].sum()),
    }


def in_drill(frame: pd.DataFrame, drill: str) -> pd.DataFrame:
    """The customers of a drill: ``*`` all, ``GD`` a province, ``GD/Guangzhou`` a city."""
    if drill == ALL_PROVINCES:
        return frame
    column = "city" if CITY_SEP in drill else "province"
    if (
        column == "province"
        and frame["province"].nunique() == 1
        and len(frame)
        and frame["province"].iloc[0] == drill
    ):
        return frame  # the region is the province: no copy
    return frame[frame[column] == drill]


def concat_graded(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Graded frames one after another, their categorical columns kept categorical (the union of
    their categories) so counting stays fast."""
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    if len(frames) == 1:
        return frames[0]
    out = {}
    for c in frames[0].columns:
        if all(isinstance(f[c].dtype, pd.CategoricalDtype) for f in frames):
            out[c] = union_categoricals([f[c].array for f in frames], ignore_order=True)
        else:
            out[c] = np.concatenate([f[c].to_numpy() for f in frames])
    return pd.DataFrame(out)


def trend(frames: dict[str, pd.DataFrame], lang: Language = "zh") -> dict:
    """Per month (oldest first): customers, and their count and share per grade and churn band."""
    rows = []
    for month in sorted(frames):
        frame = frames[month]
        rows.append(
            {
                "month": month,
                "customers": len(frame),
                **{m: distribution(frame, m, lang) for m in MEASURES},
            }
        )
    return {
        "rows": rows,
        "columns": {
            m: [{"code": c, "label": measure_label(m, c, lang)} for c in measure_codes(m)] for m in MEASURES
        },
    }


def trend_figure(view: dict, measure: str, lang: Language) -> str:
    """Shares of each grade (or band) by month, one line each: plotly figure JSON."""
    months = [r["month"] for r in view["rows"]]
    figure = go.Figure()
    for i, column in enumerate(view["columns"][measure]):
        shares = [r[measure][i]["share"] for r in view["rows"]]
        counts = [r[measure][i]["count"] for r in view["rows"]]
        figure.add_trace(
            go.Scatter(
                x=months,
                y=shares,
                customdata=counts,
                mode="lines+markers",
                name=f"{column['code']} {column['label']}" if measure == "credit_grade" else column["label"],
                hovertemplate="%{x}: %{y:.1%} (%{customdata})<extra></extra>",
            )
        )
    figure.update_layout(
        title=WORDS.word("grade" if measure == "credit_grade" else "churn_band", lang),
        yaxis={"tickformat": ".0%", "rangemode": "tozero"},
        xaxis={"type": "category"},
        height=300,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
    )
    return figure_json(figure)


def comparison_figure(table: dict, lang: Language) -> str:
    """Regions side by side: each region's share of every grade (or band), grouped bars, the
    counts on hover."""
    labels = [r["label"] for r in table["rows"]]
    figure = go.Figure()
    for i, column in enumerate(table["columns"]):
        counts = [r["counts"][i] for r in table["rows"]]
        shares = [r["counts"][i] / r["total"] if r["total"] else 0.0 for r in table["rows"]]
        figure.add_trace(
            go.Bar(
                x=labels,
                y=shares,
                customdata=counts,
                name=f"{column['code']} {column['label']}"
                if table["measure"] == "credit_grade"
                else column["label"],
                hovertemplate="%{x}: %{y:.1%} (%{customdata})<extra></extra>",
            )
        )
    figure.update_layout(
        barmode="group",
        title=WORDS.word("grade" if table["measure"] == "credit_grade" else "churn_band", lang),
        yaxis={"tickformat": ".0%"},
        height=320,
        margin={"l": 50, "r": 10, "t": 40, "b": 60},
    )
    return figure_json(figure)


def export_rows(
    frame: pd.DataFrame, dimension: str, query: dict[str, str], lang: Language = "zh"
) -> list[dict]:
    """The current table as rows of a CSV: per value of ``dimension``, customers per grade and per
    churn band, the total and, with an ad-hoc query, how many of them match it; a total row last."""
    grades = cross_table(frame, dimension, lang, "credit_grade")
    bands = {r["value"]: r["counts"] for r in cross_table(frame, dimension, lang, "churn_band")["rows"]}
    matching = frame[query_mask(frame, query)][dimension].value_counts() if any(query.values()) else None
    out = []
    for r in [
        *grades["rows"],
        {
            "value": "total",
            "label": WORDS.word("total", lang),
            "counts": grades["totals"],
            "total": grades["total"],
        },
    ]:
        row = {dimension: r["value"], "label": r["label"]}
        row.update({f"credit_grade_{c['code']}": n for c, n in zip(grades["columns"], r["counts"])})
        band_counts = (
            bands.get(r["value"])
            if r["value"] != "total"
            else [sum(b[i] for b in bands.values()) for i in range(len(BANDS))]
        )
        row.update({f"churn_band_{b}": n for b, n in zip(BANDS, band_counts or [0] * len(BANDS))})
        row["customers"] = r["total"]
        if matching is not None:
            row["matching"] = (
                int(matching.sum()) if r["value"] == "total" else int(matching.get(r["value"], 0))
            )
        out.append(row)
    return out


def rows_csv(rows: list[dict]) -> str:
    """Rows as CSV text; a cell a spreadsheet would take for a formula is quoted with ``'``."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: (f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v)
                for k, v in row.items()
            }
        )
    return buffer.getvalue()


def read_choices(
    form: dict[str, str] | None,
    months: list[str],
    provinces: list[str],
    cities: dict[str, list[str]] | None = None,
) -> tuple[dict, bool]:
    """The page's choices from a form: month, drill (``*`` national, a province or a province's
    city ``GD/Guangzhou``), dimension and the ad-hoc fields, each one of its fixed choices. Returns
    (choices, valid); an invalid form gives the defaults (latest month, the widest scope, by
    province or category) and False."""
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
        "drill": drill_values(provinces, cities or {}),
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


def drill_values(provinces: list[str], cities: dict[str, list[str]]) -> list[str]:
    """National (more than one province), then each province followed by its cities."""
    out = [ALL_PROVINCES] if len(provinces) > 1 else []
    for p in provinces:
        out += [p, *(f"{p}{CITY_SEP}{c}" for c in cities.get(p, []))]
    return out


# -- I/O: the graded customers of a province-month ---------------------------------------------------

_cache: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_cache_lock = threading.Lock()
_cities: dict[tuple, pd.Series] = {}


def _master_path(raw_dir, province: str) -> Path:
    return Path(partition_path(raw_dir, "subscribers", province))


def subscriber_cities(raw_dir, province: str) -> pd.Series:
    """Each number's ``GD/Guangzhou`` from the province's subscriber master (an empty city is
    ``GD/unknown``), indexed by msisdn; empty without a master. Kept per file version."""
    path = _master_path(raw_dir, province)
    if not path.exists():
        return pd.Series(dtype=object)
    key = (str(path), path.stat().st_mtime_ns)
    with _cache_lock:
        if key in _cities:
            return _cities[key]
    master = pd.read_parquet(path, columns=["msisdn", "city"]).drop_duplicates("msisdn", keep="last")
    city = master["city"].astype("string").str.strip().fillna("").replace("", UNKNOWN_CITY)
    series = pd.Series(
        (province + CITY_SEP + city).to_numpy(dtype=object), index=master["msisdn"].astype(str)
    )
    with _cache_lock:
        for old in [k for k in _cities if k[0] == key[0]]:
            del _cities[old]
        _cities[key] = series
    return series


def city_names(raw_dir, province: str) -> list[str]:
    """The province's cities in its subscriber master, sorted, ``unknown`` last if any is empty."""
    values = subscriber_cities(raw_dir, province).unique()
    names = sorted({v.partition(CITY_SEP)[2] for v in values} - {UNKNOWN_CITY})
    return names + ([UNKNOWN_CITY] if any(v.endswith(CITY_SEP + UNKNOWN_CITY) for v in values) else [])


def graded_customers(backend, province: str, month: str, chunk_rows: int = 50_000) -> pd.DataFrame:
    """The province-month's customers with their credit grade and churn band (``COLUMNS``), as the
    batch file grades them, and their city; kept in memory per champions' versions, so a new
    champion grades again."""
    models = backend.models.for_province(province)
    master = _master_path(backend.settings.raw_dir, province)
    key = (
        str(backend.settings.offline_dir),
        province,
        month,
        tuple(sorted(models.versions.items())),
        master.stat().st_mtime_ns if master.exists() else 0,
    )
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    cities = subscriber_cities(backend.settings.raw_dir, province)
    parts = []
    for chunk in snapshot_chunks(backend.settings, province, month, chunk_rows):
        graded = interface_rows(models, chunk, month, "").to_pandas()
        city = chunk["msisdn"].astype(str).map(cities).fillna(province + CITY_SEP + UNKNOWN_CITY)
        parts.append(
            pd.DataFrame(
                {
                    "province": chunk["province"].astype(str).to_numpy(),
                    "credit_grade": graded["credit_grade"].to_numpy(),
                    "churn_band": graded["churn_band"].to_numpy(dtype=object),
                    "city": city.to_numpy(dtype=object),
                    **{c: chunk[c].to_numpy() for c in COLUMNS[4:]},
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    # counted many times per visit: categories count several times faster than Python strings
    frame = frame.astype({c: "category" for c in CATEGORICAL})
    with _cache_lock:
        _cache[key] = frame
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return frame


def scope_snapshots(backend, scope: str) -> tuple[list[str], list[str]]:
    """The provinces the key may see that have snapshots, and those provinces' months."""
    pairs = [(p, m) for p, m in offline_snapshots(backend.settings.offline_dir) if may_score(scope, p)]
    return sorted({p for p, _ in pairs}), sorted({m for _, m in pairs})


def region_frame(backend, provinces: list[str], drill: str, month: str) -> pd.DataFrame:
    """The graded customers of the drill's region: every province of the scope (national) or the
    drill's province (a province or one of its cities)."""
    drilled = provinces if drill == ALL_PROVINCES else [drill.partition(CITY_SEP)[0]]
    present = {p for p, _ in offline_snapshots(backend.settings.offline_dir, month=month)}
    frames = [graded_customers(backend, p, month) for p in drilled if p in present]
    return concat_graded(frames)


def current_views(
    region: pd.DataFrame,
    history: dict[str, pd.DataFrame],
    drill: str,
    dimension: str,
    query: dict[str, str],
    lang: Language = "zh",
) -> dict:
    """Every view of the page from graded frames: ``region`` the chosen month's region
    (``region_frame``), ``history`` its frames per month for the trend."""
    frame = in_drill(region, drill)
    # regions side by side: the provinces (national) or the drill's province's cities
    comparison = cross_table(region, "province" if drill == ALL_PROVINCES else "city", lang)
    trend_view = trend({m: in_drill(f, drill) for m, f in history.items()}, lang)
    return {
        "overview": grade_overview(frame, lang),
        "table": cross_table(frame, dimension, lang),
        "bands_table": cross_table(frame, dimension, lang, "churn_band"),
        "comparison": comparison,
        "comparison_figure": comparison_figure(comparison, lang),
        "trend": trend_view,
        "trend_figures": {m: trend_figure(trend_view, m, lang) for m in MEASURES},
        "adhoc": adhoc_count(frame, query) if any(query.values()) else None,
    }


def _scope_choices(visit: Visit) -> tuple[list[str], list[str], dict, dict, bool]:
    provinces, months = scope_snapshots(visit.backend, visit.scope)
    cities = {p: city_names(visit.backend.settings.raw_dir, p) for p in provinces}
    choices, valid = read_choices(visit.form, months, provinces, cities)
    return provinces, months, cities, choices, valid


def export_csv(visit: Visit) -> tuple[int, str, str]:
    """The current table (the form's month, drill, dimension and ad-hoc query) as CSV: (status,
    file name, text); 422 and no text for a choice off the lists, 404 with nothing in scope."""
    provinces, _, _, choices, valid = _scope_choices(visit)
    if not valid:
        return 422, "", ""
    if not provinces:
        return 404, "", ""
    region = region_frame(visit.backend, provinces, choices["drill"], choices["month"])
    frame = in_drill(region, choices["drill"])
    query = {name: choices[name] for name in QUERY_FIELDS}
    text = rows_csv(export_rows(frame, choices["dimension"], query, visit.lang))
    scope = "national" if choices["drill"] == ALL_PROVINCES else choices["drill"]
    stem = "".join(
        c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in scope.replace(CITY_SEP, "-")
    )
    return 200, f"overview_{choices['month']}_{stem}_{choices['dimension']}.csv", text


def handle(visit: Visit) -> dict:
    """The views for the chosen month and drill; the defaults for a GET."""
    lang = visit.lang
    provinces, months, cities, choices, valid = _scope_choices(visit)
    drills = []
    for value in drill_values(provinces, cities):
        if value == ALL_PROVINCES:
            label = WORDS.word("national", lang)
        elif CITY_SEP in value:
            city = value.partition(CITY_SEP)[2]
            label = "\u2003" + (WORDS.word("unknown", lang) if city == UNKNOWN_CITY else city)
        else:
            label = value
        drills.append({"value": value, "label": label})
    context: dict = {
        "w": WORDS.in_language(lang),
        "choices": choices,
        "months": months,
        "drills": drills,
        "dimensions": [
            {"value": d, "label": WORDS.word(d, lang) if d in ("province", "city") else _name(d, lang)}
            for d in DIMENSIONS
        ],
        "query_fields": [
            {
                "name": name,
                "label": WORDS.word("grade", lang)
                if name == "credit_grade"
                else WORDS.word(name, lang)
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
    drill = choices["drill"]
    months_shown = months[-TREND_MONTHS:]
    history = {m: region_frame(visit.backend, provinces, drill, m) for m in months_shown}
    region = history.get(choices["month"])
    if region is None:
        region = region_frame(visit.backend, provinces, drill, choices["month"])
    query = {name: choices[name] for name in QUERY_FIELDS}
    context.update(
        drill_label=value_label("city", drill, lang)
        if CITY_SEP in drill
        else next((d["label"] for d in drills if d["value"] == drill), drill),
        **current_views(region, history, drill, choices["dimension"], query, lang),
    )
    return context


def _name(indicator: str, lang: Language) -> str:
    found = lib.BY_ID[indicator]
    return found.name_zh if lang == "zh" else found.name_en


def _option_label(name: str, value: str, lang: Language) -> str:
    if name == "credit_grade":
        return f"{value} {grade_label(int(value), lang)}"
    if name == "churn_band":
        return band_label(value, lang)
    if name == "complaints_3m_at_least":
        return value
    return value_words(value, "code", lang)


PAGE = Page("/overview", "信用总览", "Credit overview", "overview.html", handle)

__all__ = [
    "PAGE",
    "adhoc_count",
    "comparison_figure",
    "cross_table",
    "current_views",
    "distribution",
    "export_csv",
    "export_rows",
    "grade_overview",
    "graded_customers",
    "in_drill",
    "read_choices",
    "rows_csv",
    "trend",
    "trend_figure",
]
