"""Bring your own data: a province's customer tables, mapped onto the indicator library.

A mapping file (YAML; example in ``features/provinces/byod_example.yaml``) names the
source (CSV or Parquet files, a glob, or a SQL query on a database URL), which of its
columns are the phone number and the month, which are indicators and which are
labels. ``run_byod`` reads the source, recodes it, passes it through the quality gate
(the library's types, codes and ranges; errors name the file, column and rows), writes
the offline store's files in the layout of ``features.build`` and the labels beside
the generator's, applies the Feast repository and materializes the latest month. No
synthetic data is involved; training then reads the province's labels.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from core import indicators as lib
from core.errors import ConfigurationError, DataQualityError
from core.io import atomic_write_parquet, snapshot_time
from core.msisdn import MSISDN_PATTERN
from core.settings import Settings
from core.tasks import TASKS
from features.build import offline_file
from features.custom import custom_frame, write_custom
from features.provinces import ProvinceConfig, custom_subject, load_province, province_code, repeated
from features.quality import REJECT, Problem, QualityReport, check_indicators
from features.yamlfile import YamlFile

_MONTH = re.compile(r"^(\d{4})-?(0[1-9]|1[0-2])")
_BOOL = {"true": 1, "false": 0, "yes": 1, "no": 0, "y": 1, "n": 0, "t": 1, "f": 0}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqlSource(_Strict):
    url: str
    query: str


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
    #: source column -> indicator id (library, or the province's custom indicators)
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
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        try:
            shown = make_url(src.sql.url).render_as_string(hide_password=True)
            engine = create_engine(src.sql.url)
            with engine.connect() as connection:
                frame = pd.read_sql_query(text(src.sql.query), connection)
            engine.dispose()
        except Exception as err:  # driver, connection and SQL errors all mean: cannot read the source
            raise ConfigurationError(
                f"cannot read the SQL source ({type(err).__name__}: {str(err).splitlines()[0]})"
            ) from None
        return [Part(f"sql {shown}", frame)]
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


@dataclass
class ByodResult:
    province: str
    months: list[str]
    rows: int
    customers: int
    models_labelled: list[str]
    report: QualityReport
    offline_files: int
    skipped: dict[str, str] = field(default_factory=dict)


def run_byod(settings: Settings, mapping_path: Path) -> ByodResult:
    """Check the province's data, write the offline store and labels, apply Feast, materialize.

    Everything is checked before anything is written; a reject raises DataQualityError.
    """
    mapping_path = Path(mapping_path)
    mapping, source, config = read_mapping(mapping_path, settings)
    _require_indicators(mapping, source, config)
    report = QualityReport(root=str(mapping_path))
    frames = []
    for part in read_source(mapping, mapping_path.parent):
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
    data["province"] = mapping.province
    months = sorted(data["month"].unique())
    province = mapping.province
    written = set()
    for month in months:
        rows = data[data["month"] == month].reset_index(drop=True)
        stamp = pd.Series(snapshot_time(month), index=rows.index).astype("datetime64[us, UTC]")
        created = pd.Series(pd.Timestamp.now(tz="UTC"), index=rows.index).astype("datetime64[us, UTC]")
        for subject in lib.SUBJECTS:
            view = pd.concat([rows[["msisdn"]].astype(str), _typed(rows, lib.by_subject(subject))], axis=1)
            view.insert(1, "event_timestamp", stamp)
            view["created_timestamp"] = created
            path = offline_file(settings.offline_dir, subject, province, month)
            atomic_write_parquet(view, path)
            written.add(path)
        if config and config.custom_indicators:
            own = pd.DataFrame(
                {
                    c.column: rows[c.id]
                    for c in config.custom_indicators
                    if c.column is not None and c.id in rows.columns
                }
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
            path = offline_file(settings.offline_dir, custom_subject(province), province, month)
            write_custom(custom, stamp, path, config.custom)
            written.add(path)
    for stale in settings.offline_dir.glob(f"*/{province}_*.parquet"):  # months no longer in the source
        if stale not in written:
            stale.unlink()
    labelled = [
        t for t in dict.fromkeys(mapping.labels.values()) if data[TASKS[t].label_spec.id].notna().any()
    ]
    _write_labels(settings, data, province, labelled)
    _publish(settings, months[-1])
    return ByodResult(
        province, months, len(data), int(data["msisdn"].nunique()), labelled, report, len(written)
    )


def _require_indicators(mapping: DataMapping, source: YamlFile, config: ProvinceConfig | None) -> None:
    """A labelled model needs every indicator its feature contract uses (the mandatory nine included)."""
    # custom indicators come from their own column (checked with the data) or a formula
    mapped = set(mapping.columns.values()) | {c.id for c in (config.custom_indicators if config else [])}
    for column, name in mapping.labels.items():
        t = TASKS[name]
        needed = config.effective_indicators(t.evaluation) if config else t.indicators
        missing = [i.id for i in needed if i.id not in mapped and i.id != "province"]
        if missing:
            raise source.error(
                ("labels", column),
                f"labels for {name} given, but its indicators are not all mapped: "
                f"{', '.join(missing)} (map them under 'columns'"
                + (
                    ", or choose fewer optional ones in the province file)"
                    if config
                    else "; a province file can leave optional ones out)"
                ),
            )


def _write_labels(settings: Settings, data: pd.DataFrame, province: str, labelled: list[str]) -> None:
    path = settings.labels_dir / f"{province}.parquet"
    if not labelled:
        path.unlink(missing_ok=True)
        return
    out = data[["msisdn", "province", "month"]].copy()
    out.insert(1, "event_timestamp", [snapshot_time(m) for m in out["month"]])
    for task in labelled:
        spec = TASKS[task].label_spec
        out[spec.id] = _typed(data, [spec])[spec.id]
        if spec.kind != "category":
            out[spec.id] = out[spec.id].astype(float)
    atomic_write_parquet(out, path)


def _publish(settings: Settings, month: str) -> None:
    from features.store import apply_repository, materialize_latest

    store = apply_repository(settings)
    materialize_latest(store, month)


__all__ = ["DataMapping", "read_mapping", "run_byod", "ByodResult"]
