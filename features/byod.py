"""Bring your own data: a province's customer tables, mapped onto the indicator library.

A mapping file (YAML; example in ``features/byod_example.yaml``) names the source (CSV or
Parquet files, a glob, or a SQL query on a database URL), which of its columns are the
phone number and the month, which are indicators and which are labels. ``run_byod`` reads
the source, recodes it, passes it through the quality gate (the library's types, codes and
ranges; errors name the file, column and rows), writes the offline store's files in the
layout of ``features.build`` and the labels beside the generator's, applies the Feast
repository and materializes the latest month. No synthetic data is involved; training then
reads the province's labels.

A province's data is precious and the mapping is written by people, so:

* a mapping must map at least one indicator, and a mapped column must bring values (a
  mapping of nothing, or of empty columns, would publish customers with every indicator
  empty);
* by default a run adds the months of its source and updates those the province already
  had, and never touches the province's other months (nor their labels: the labels file is
  merged by month). ``replace=True`` (``telcoml byod --replace``) makes the source the
  province's whole history;
* every run changes the province's files as one generation (``features.generations``): the
  new files are written completely under temporary names, the files they replace or remove
  are kept in ``offline/.previous/<PROVINCE>/<stamp>/``, and only then are they swapped in,
  each by an atomic rename. An error undoes the run at once, and a run interrupted harder
  (the process killed) is undone by the next run of that province (``recover_interrupted``).
  The last ``KEPT_GENERATIONS`` previous generations are kept;
* a model is trained only if its labels exist and every indicator it uses is mapped (the
  credit grade: the nine mandatory ones and the optional ones the province file chooses;
  the other models: the library's set as the province file tailors it per model). Labels of
  a model the data cannot train are still stored, and the run's report warns which
  indicators it lacks (``ByodResult.models_untrainable``); the other models train;
* a SQL source (``features.sqlsource``) runs one SELECT (or WITH ... SELECT) statement,
  read-only, within ``source.sql.timeout_seconds`` (default 300 s, at most 3600 s) and
  ``source.sql.max_rows`` (default 10 million).
"""

from __future__ import annotations

import functools
import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import ValidationInfo, field_validator, model_validator

from core import indicators as lib
from core.errors import ConfigurationError, DataQualityError
from core.io import atomic_write_parquet, snapshot_time
from core.msisdn import MSISDN_PATTERN
from core.settings import Settings
from core.tasks import TASKS
from features.build import offline_file
from features.custom import custom_frame, write_custom
from features.generations import (
    KEPT_GENERATIONS,
    GenerationError,
    Writer,
    generation_stamp,
    plan_generation,
    previous_dir,
    province_lock,
    province_months,
    prune_generations,
    recover_interrupted,
    swap_generation,
)
from features.provinces import (
    ProvinceConfig,
    custom_subject,
    load_province,
    missing_indicators,
    province_code,
    repeated,
)
from features.quality import REJECT, WARN, Problem, QualityReport, check_indicators
from features.sqlsource import SqlSource, _Strict, read_sql, source_label
from features.yamlfile import YamlFile

_MONTH = re.compile(r"^(\d{4})-?(0[1-9]|1[0-2])")
_BOOL = {"true": 1, "false": 0, "yes": 1, "no": 0, "y": 1, "n": 0, "t": 1, "f": 0}


# --------------------------------------------------------------------------- the mapping


class Source(_Strict):
    """Where the customer table is: files (``path``, a glob allowed) or a SQL query (``sql``)."""

    path: str | None = None
    format: Literal["csv", "parquet"] | None = None
    sql: SqlSource | None = None

    @model_validator(mode="after")
    def _one(self) -> Source:
        if (self.path is None) == (self.sql is None):
            raise ValueError("give exactly one of 'path' (CSV or Parquet files) or 'sql' ({url, query})")
        return self


class DataMapping(_Strict):
    """A province's own customer table and how its columns map onto indicators and labels."""

    province: str
    source: Source
    msisdn: str
    month: str
    #: source column -> indicator id (library, or the province's custom indicators); at least one
    columns: dict[str, str]
    #: source column -> model (a name in core.tasks.TASKS)
    labels: dict[str, str] = {}
    #: indicator id or model -> {the province's code: the library's code}
    codes: dict[str, dict[str, str | int | float]] = {}

    @field_validator("province")
    @classmethod
    def _code(cls, value: str) -> str:
        return province_code(value)

    @field_validator("columns")
    @classmethod
    def _indicators(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if not value:  # the province's months would be published with every indicator empty
            raise ValueError(
                "maps no indicator: list the province's columns under 'columns' as "
                "'COLUMN: indicator_id' (`telcoml indicators` lists the ids); data without an "
                "indicator would publish every customer with every indicator empty"
            )
        custom = (info.context or {}).get("custom", [])
        valid = [i for i in lib.BY_ID if i != "province"] + custom
        for column, target in value.items():
            if target not in valid:
                raise ValueError(
                    f"column {column!r} maps to unknown indicator {target!r}; valid indicators: "
                    f"{', '.join(valid)}"
                )
        twice = repeated(list(value.values()))
        if twice:
            raise ValueError(f"more than one column maps to {', '.join(twice)}")
        return value

    @field_validator("labels")
    @classmethod
    def _tasks(cls, value: dict[str, str]) -> dict[str, str]:
        for column, task in value.items():
            if task not in TASKS:
                raise ValueError(
                    f"column {column!r} maps to unknown model {task!r}; valid models: {', '.join(TASKS)}"
                )
        return value


def read_mapping(path: Path, settings: Settings) -> tuple[DataMapping, YamlFile, ProvinceConfig | None]:
    """The mapping file, validated against the library and the province's own file."""
    source = YamlFile(path)
    code = source.data.get("province") if isinstance(source.data, dict) else None
    config = load_province(settings, code) if isinstance(code, str) and code.isalpha() else None
    mapping = source.validate(DataMapping, custom=[c.id for c in config.custom_indicators] if config else [])
    return mapping, source, config


# --------------------------------------------------------------------------- reading


@dataclass
class Part:
    """One piece of the source (a file, or the query's result) and how messages name it."""

    label: str
    frame: pd.DataFrame


def read_source(mapping: DataMapping, base: Path) -> list[Part]:
    """The source's rows: one part per file (CSV read as text, so the gate judges the values)."""
    src = mapping.source
    if src.sql is not None:
        return [Part(source_label(src.sql), read_sql(src.sql))]
    pattern = Path(src.path) if Path(src.path).is_absolute() else base / src.path
    files = sorted(Path(p) for p in glob.glob(str(pattern)))
    if not files:
        raise ConfigurationError(f"no files match {pattern}")
    parts = []
    for f in files:
        kind = src.format or ("parquet" if f.suffix.lower() in (".parquet", ".pq") else "csv")
        try:
            frame = (
                pd.read_parquet(f) if kind == "parquet" else pd.read_csv(f, dtype=str, keep_default_na=True)
            )
        except Exception as err:  # empty, truncated or not the declared format
            raise DataQualityError(
                [
                    Problem(
                        "completeness",
                        REJECT,
                        str(f),
                        "byod",
                        None,
                        [],
                        f"cannot read as {kind}: {type(err).__name__}: {err}",
                    )
                ]
            ) from None
        parts.append(Part(str(f), frame))
    return parts


# --------------------------------------------------------------------------- shaping


def _months(s: pd.Series) -> pd.Series:
    """ "2026-03", "202603", "2026-03-31", a date -> "2026-03"; unreadable -> NaN."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.strftime("%Y-%m").where(s.notna())
    parts = s.astype("string").str.strip().str.extract(_MONTH)
    return parts[0].str.cat(parts[1], sep="-")  # empty where either part is


def _recode(s: pd.Series, codes: dict) -> pd.Series:
    if not codes:
        return s
    return s.map(lambda v: codes.get(v, codes.get(str(v), v)) if pd.notna(v) else v)


def shape(
    part: Part, mapping: DataMapping, config: ProvinceConfig | None
) -> tuple[pd.DataFrame, list[Problem]]:
    """One part in the library's terms (msisdn, month, indicators, labels), and what the gate found."""
    frame, label = part.frame.reset_index(drop=True), part.label
    problems: list[Problem] = []
    own = _own_column_customs(mapping, config)
    wanted = [mapping.msisdn, mapping.month, *mapping.columns, *mapping.labels, *(c.column for c in own)]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        return pd.DataFrame(), [
            Problem(
                "completeness",
                REJECT,
                label,
                "byod",
                ", ".join(missing),
                [],
                f"column(s) named in the mapping are not in the data; it has: "
                f"{', '.join(map(str, frame.columns))}",
            )
        ]
    out = pd.DataFrame(
        {"msisdn": frame[mapping.msisdn].astype("string").str.strip(), "month": _months(frame[mapping.month])}
    )
    bad = ~out["msisdn"].fillna("").str.match(MSISDN_PATTERN).to_numpy(dtype=bool)
    if bad.any():
        problems.append(
            Problem(
                "accuracy",
                REJECT,
                label,
                "byod",
                mapping.msisdn,
                np.flatnonzero(bad)[:10].tolist(),
                f"{int(bad.sum())} phone number(s) not of 11 digits",
            )
        )
    bad = out["month"].isna().to_numpy()
    if bad.any():
        problems.append(
            Problem(
                "timeliness",
                REJECT,
                label,
                "byod",
                mapping.month,
                np.flatnonzero(bad)[:10].tolist(),
                f"{int(bad.sum())} month(s) not readable as YYYY-MM, YYYYMM or a date",
            )
        )
    dup = out.duplicated(["msisdn", "month"], keep=False).to_numpy() & ~bad
    if dup.any():
        problems.append(
            Problem(
                "accuracy",
                REJECT,
                label,
                "byod",
                f"{mapping.msisdn}, {mapping.month}",
                np.flatnonzero(dup)[:10].tolist(),
                f"{int(dup.sum())} rows repeat a customer's month",
            )
        )
    specs = {i.id: i for i in ([*lib.CATALOGUE, *(config.custom if config else [])])}
    checked = []
    for column, target in mapping.columns.items():
        out[target] = _recode(frame[column], mapping.codes.get(target, {}))
        checked.append(specs[target])
    for c in own:
        out[c.id] = _recode(frame[c.column], mapping.codes.get(c.id, {}))
        checked.append(specs[c.id])
    for column, task in mapping.labels.items():
        values = _recode(frame[column], mapping.codes.get(task, {}))
        if TASKS[task].label_spec.kind == "int":  # churn flags as words
            values = values.map(lambda v: _BOOL.get(v.strip().lower(), v) if isinstance(v, str) else v)
        out[TASKS[task].label_spec.id] = values
        checked.append(TASKS[task].label_spec)
    found = check_indicators(out, label, checked)
    by_target = {
        **{t: c for c, t in mapping.columns.items()},
        **{TASKS[t].label_spec.id: c for c, t in mapping.labels.items()},
        **{c.id: c.column for c in own},
    }
    for p in found:  # name the province's own column, not the library's
        p.column = f"{by_target.get(p.column, p.column)} (-> {p.column})"
        p.table = "byod"
    return out, problems + found


def _own_column_customs(mapping: DataMapping, config: ProvinceConfig | None) -> list:
    """The province's custom indicators read from a column of its data (not mapped by id)."""
    return [
        c
        for c in (config.custom_indicators if config else [])
        if c.column is not None and c.id not in mapping.columns.values()
    ]


def _typed(frame: pd.DataFrame, indicators: list[lib.Indicator]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for ind in indicators:
        values = frame[ind.id] if ind.id in frame.columns else pd.Series(np.nan, index=frame.index)
        if ind.kind == "int":
            out[ind.id] = pd.array(pd.to_numeric(values, errors="coerce"), dtype="Int64")
        elif ind.kind == "float":
            out[ind.id] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            out[ind.id] = pd.Series(values.astype(object).where(values.notna(), None), dtype=object)
    return out


def _blank(s: pd.Series) -> np.ndarray:
    """Where a column holds no value: missing, or (text) only spaces."""
    if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
        return s.isna().to_numpy(dtype=bool)
    text = s.astype("string").str.strip()
    return (text.isna() | (text == "")).fillna(True).to_numpy(dtype=bool)


def empty_mapped_columns(
    data: pd.DataFrame, mapping: DataMapping, config: ProvinceConfig | None, label: str
) -> list[Problem]:
    """Mapped columns that bring nothing: the same mistake as mapping no column at all.

    Rejects a mapped indicator column empty in every row, and a month in which no mapped
    indicator has any value (it would be published with every indicator empty). A label
    column empty in every row is a warning: the model is then not trained.
    """
    problems: list[Problem] = []
    targets = {
        **{target: column for column, target in mapping.columns.items()},
        **{c.id: c.column for c in _own_column_customs(mapping, config)},
    }
    blank = {target: _blank(data[target]) for target in targets}
    for target, column in targets.items():
        if blank[target].all():
            problems.append(
                Problem(
                    "completeness",
                    REJECT,
                    label,
                    "byod",
                    f"{column} (-> {target})",
                    [],
                    f"empty in every one of the {len(data):,} rows: a mapped column must bring values "
                    "(leave it out of 'columns' if the province has none)",
                )
            )
    if blank and not problems:
        nothing = np.logical_and.reduce(list(blank.values()))
        for month in sorted(data.loc[nothing, "month"].unique()):
            in_month = (data["month"] == month).to_numpy()
            if nothing[in_month].all():
                problems.append(
                    Problem(
                        "completeness",
                        REJECT,
                        label,
                        "byod",
                        mapping.month,
                        [],
                        f"month {month}: none of the {len(targets)} mapped indicator columns has a value "
                        f"in any of its {int(in_month.sum()):,} rows; it would be published with every "
                        "indicator empty",
                    )
                )
    for column, task in mapping.labels.items():
        spec = TASKS[task].label_spec
        if _blank(data[spec.id]).all():
            problems.append(
                Problem(
                    "completeness",
                    WARN,
                    label,
                    "byod",
                    f"{column} (-> {spec.id})",
                    [],
                    f"empty in every row: no labels for {task}, which is not trained",
                )
            )
    return problems


@dataclass
class ByodResult:
    province: str
    #: the months of the source, now in the offline store
    months: list[str]
    rows: int
    customers: int
    #: models with labels in the data (their labels are stored)
    models_labelled: list[str]
    report: QualityReport
    offline_files: int
    #: the labelled models the data can train (every indicator they use is mapped)
    models_trainable: list[str] = field(default_factory=list)
    #: the labelled models it cannot train -> the indicators each lacks (a warning in ``report``)
    models_untrainable: dict[str, list[str]] = field(default_factory=dict)
    #: every indicator of the credit model is mapped: the credit scorecard can be fitted, which
    #: needs no labels (a province without any still gets a credit grade)
    credit_scorecard: bool = False
    skipped: dict[str, str] = field(default_factory=dict)
    #: True when the source replaced the province's whole history (``replace``)
    replaced: bool = False
    #: months of the source the province had before: their files were replaced
    months_updated: list[str] = field(default_factory=list)
    #: earlier months not in the source, left as they were (without ``replace``)
    months_kept: list[str] = field(default_factory=list)
    #: earlier months not in the source, removed (with ``replace``)
    months_removed: list[str] = field(default_factory=list)
    #: where the files this run replaced or removed are kept; None when it replaced nothing
    previous: Path | None = None
    previous_files: int = 0
    #: the month materialized into the online store: the province's latest
    online_month: str = ""
    #: interrupted earlier runs of the province undone before this one
    recovered: list[str] = field(default_factory=list)


def run_byod(settings: Settings, mapping_path: Path, replace: bool = False) -> ByodResult:
    """Check the province's data, write the offline store and labels, apply Feast, materialize.

    Everything is checked before anything is written; a reject raises DataQualityError and a
    mapping mistake ConfigurationError. Without ``replace`` the source's months are added or
    updated and the province's other months kept; with it they are removed. Either way the
    files replaced or removed are kept as the previous generation (``ByodResult.previous``).
    """
    mapping_path = Path(mapping_path)
    mapping, _, config = read_mapping(mapping_path, settings)
    data, report = _checked_data(mapping, mapping_path, config)
    province = mapping.province
    months = sorted(data["month"].unique())
    custom = _custom_indicators(data, months, config, mapping_path)
    labelled = [
        t for t in dict.fromkeys(mapping.labels.values()) if data[TASKS[t].label_spec.id].notna().any()
    ]
    untrainable = untrainable_models(mapping, config, labelled)
    report.problems.extend(_untrainable_warnings(mapping, config, untrainable, str(mapping_path)))
    created = pd.Timestamp.now(tz="UTC")
    with province_lock(settings, province):
        recovered = recover_interrupted(settings, province)
        before = province_months(settings, province)
        outputs = _offline_outputs(settings, data, months, config, custom, created)
        labels = _labels(settings, data, province, labelled, replace)
        labels_path = settings.labels_dir / f"{province}.parquet"
        if labels is not None:
            outputs[labels_path] = lambda path: atomic_write_parquet(labels, path)
        stamp = generation_stamp()
        changes = plan_generation(settings, province, outputs, months, replace, labels_path, stamp)
        previous = swap_generation(settings, province, changes, outputs, replace, before, months, stamp)
        prune_generations(settings, province)
    after = sorted(set(months) | (set() if replace else set(before)))
    _publish(settings, after[-1])
    return ByodResult(
        province,
        months,
        len(data),
        int(data["msisdn"].nunique()),
        labelled,
        report,
        sum(1 for path in outputs if path != labels_path),
        models_trainable=[t for t in labelled if t not in untrainable],
        models_untrainable=untrainable,
        credit_scorecard=not untrainable_models(mapping, config, [lib.CREDIT_GRADE]),
        replaced=replace,
        months_updated=[m for m in months if m in before],
        months_kept=[] if replace else [m for m in before if m not in months],
        months_removed=[m for m in before if m not in months] if replace else [],
        previous=previous,
        previous_files=sum(1 for c in changes if c.kept) if previous else 0,
        online_month=after[-1],
        recovered=recovered,
    )


def _checked_data(
    mapping: DataMapping, mapping_path: Path, config: ProvinceConfig | None
) -> tuple[pd.DataFrame, QualityReport]:
    """The source in the library's terms, through the gate; raises DataQualityError on a reject."""
    report = QualityReport(root=str(mapping_path))
    frames = []
    parts = read_source(mapping, mapping_path.parent)
    for part in parts:
        shaped, problems = shape(part, mapping, config)
        report.problems.extend(problems)
        report.files.append(part.label)
        frames.append(shaped)
    report.problems.sort(key=lambda p: p.severity != REJECT)
    report.raise_if_rejected()
    data = pd.concat(frames, ignore_index=True)
    if data.empty:
        raise DataQualityError(
            [Problem("completeness", REJECT, str(mapping_path), "byod", None, [], "no rows")]
        )
    dup = data.duplicated(["msisdn", "month"])
    if dup.any():  # the same customer-month in two files
        raise DataQualityError(
            [
                Problem(
                    "accuracy",
                    REJECT,
                    str(mapping_path),
                    "byod",
                    None,
                    [],
                    f"{int(dup.sum())} customer-months appear in more than one file",
                )
            ]
        )
    label = parts[0].label if len(parts) == 1 else f"{mapping.source.path} ({len(parts)} files)"
    report.problems.extend(empty_mapped_columns(data, mapping, config, label))
    report.problems.sort(key=lambda p: p.severity != REJECT)
    report.raise_if_rejected()
    data["province"] = mapping.province
    return data, report


def _custom_indicators(
    data: pd.DataFrame, months: list[str], config: ProvinceConfig | None, mapping_path: Path
) -> dict[str, pd.DataFrame]:
    """Month -> the province's custom indicators, checked (before anything is written)."""
    if not (config and config.custom_indicators):
        return {}
    out = {}
    for month in months:
        rows = data[data["month"] == month].reset_index(drop=True)
        own = pd.DataFrame(
            {c.column: rows[c.id] for c in config.custom_indicators if c.column is not None and c.id in rows}
        )
        custom = custom_frame(
            config, _typed(rows, [*lib.CATALOGUE]).assign(msisdn=rows["msisdn"]), None, own_columns=own
        )
        problems = [
            p
            for p in check_indicators(custom, f"{mapping_path} custom indicators {month}", config.custom)
            if p.severity == REJECT
        ]
        if problems:
            raise DataQualityError(problems)
        out[month] = custom
    return out


def _offline_outputs(
    settings: Settings,
    data: pd.DataFrame,
    months: list[str],
    config: ProvinceConfig | None,
    custom: dict[str, pd.DataFrame],
    created: pd.Timestamp,
) -> dict[Path, Writer]:
    """Each offline file of the source's months -> how to write it (to any path); a file's
    frame is built when it is written, so only one is in memory beside the data."""
    province = data["province"].iloc[0]
    positions = data.groupby("month").indices

    def rows_of(month: str) -> pd.DataFrame:
        return data.take(positions[month]).reset_index(drop=True)

    def stamps(month: str, n: int) -> pd.Series:
        return pd.Series([snapshot_time(month)] * n, dtype="datetime64[us, UTC]")

    def view(month: str, subject: str, target: Path) -> None:
        rows = rows_of(month)
        frame = pd.concat([rows[["msisdn"]].astype(str), _typed(rows, lib.by_subject(subject))], axis=1)
        frame.insert(1, "event_timestamp", stamps(month, len(rows)))
        frame["created_timestamp"] = pd.Series([created] * len(rows), dtype="datetime64[us, UTC]")
        atomic_write_parquet(frame, target)

    def own(month: str, target: Path) -> None:
        assert config is not None
        write_custom(custom[month], stamps(month, len(custom[month])), target, config.custom)

    outputs: dict[Path, Writer] = {}
    for month in months:
        for subject in lib.SUBJECTS:
            path = offline_file(settings.offline_dir, subject, province, month)
            outputs[path] = functools.partial(view, month, subject)
        if month in custom:
            path = offline_file(settings.offline_dir, custom_subject(province), province, month)
            outputs[path] = functools.partial(own, month)
    return outputs


def untrainable_models(
    mapping: DataMapping, config: ProvinceConfig | None, tasks: list[str]
) -> dict[str, list[str]]:
    """The models of ``tasks`` the mapped data cannot train -> the indicators each lacks.

    Available: the mapped columns, the province's custom indicators (from their own column,
    checked with the data, or a formula) and the province (every row has it).
    """
    mapped = {
        *mapping.columns.values(),
        "province",
        *(c.id for c in (config.custom_indicators if config else [])),
    }
    return {name: missing for name, missing in missing_indicators(config, mapped, tasks).items() if missing}


def _untrainable_warnings(
    mapping: DataMapping, config: ProvinceConfig | None, untrainable: dict[str, list[str]], label: str
) -> list[Problem]:
    """One warning per labelled model the data cannot train: which indicators it lacks, and why."""
    withheld = config.models_withheld if config else {}
    problems = []
    for column, name in mapping.labels.items():
        if name not in untrainable:
            continue
        if name in withheld:
            why = (
                f"the province file drops {', '.join(withheld[name])} from every model "
                f"(drop_indicators), so the province has no {name} model"
            )
        else:
            why = (
                f"its indicators are not all mapped: {', '.join(untrainable[name])} (map them under "
                "'columns'"
                + (
                    f", or leave them out of this model in the province file: models: "
                    f"{TASKS[name].evaluation}: drop_indicators)"
                    if config
                    else "; a province file can leave them out of this model)"
                )
            )
        problems.append(
            Problem(
                "completeness",
                WARN,
                label,
                "byod",
                f"{column} (-> {TASKS[name].label_spec.id})",
                [],
                f"labels for {name} stored, but the model is not trained: {why}",
            )
        )
    return problems


def _labels(
    settings: Settings, data: pd.DataFrame, province: str, labelled: list[str], replace: bool
) -> pd.DataFrame | None:
    """The province's labels after this run: the source's, and (without ``replace``) the earlier
    file's rows of the months not in the source. None when no month has labels."""
    new = None
    if labelled:
        new = data[["msisdn", "province", "month"]].copy()
        new.insert(1, "event_timestamp", [snapshot_time(m) for m in new["month"]])
        for task in labelled:
            spec = TASKS[task].label_spec
            new[spec.id] = _typed(data, [spec])[spec.id]
            if spec.kind != "category":
                new[spec.id] = new[spec.id].astype(float)
    path = settings.labels_dir / f"{province}.parquet"
    if replace or not path.exists():
        return new
    try:
        earlier = pd.read_parquet(path)
    except Exception as err:  # any unreadable file: say which, change nothing
        raise ConfigurationError(
            f"{path}: cannot read the province's earlier labels to keep the months not in the source "
            f"({type(err).__name__}: {err}); move the file away, or run with --replace"
        ) from None
    kept = earlier[~earlier["month"].isin(set(data["month"]))]
    frames = [f for f in (kept, new) if f is not None and len(f)]
    if not frames:
        return None
    merged = pd.concat(frames, ignore_index=True, sort=False)
    return merged.sort_values(["month", "msisdn"], kind="stable").reset_index(drop=True)


def _publish(settings: Settings, month: str) -> None:
    from features.store import apply_repository, materialize_as_set

    store = apply_repository(settings)
    materialize_as_set(settings, store, month)


__all__ = [
    "DataMapping",
    "SqlSource",
    "read_mapping",
    "run_byod",
    "ByodResult",
    "untrainable_models",
    "GenerationError",
    "recover_interrupted",
    "previous_dir",
    "KEPT_GENERATIONS",
]
