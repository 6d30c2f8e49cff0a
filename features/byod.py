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
* every run changes the province's files as one generation: the new files are written
  completely under temporary names, the files they replace or remove are kept (hard links)
  in ``offline/.previous/<PROVINCE>/<stamp>/`` (mirroring the work directory), and only
  then are they swapped in, each by an atomic rename. A journal
  (``.previous/<PROVINCE>/<stamp>/generation.json``) records the plan; an error undoes the
  run at once, and a run interrupted harder (the process killed) is undone by the next run
  of that province (``recover_interrupted``). The last ``KEPT_GENERATIONS`` previous
  generations are kept;
* a SQL source runs one SELECT (or WITH ... SELECT) statement, read-only (a read-only
  transaction on PostgreSQL, a ``mode=ro`` connection with ``query_only`` on SQLite, the
  two dialects supported), within ``source.sql.timeout_seconds`` (default 300 s, at most
  3600 s) and ``source.sql.max_rows`` (default 10 million).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import glob
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from core import indicators as lib
from core.errors import ConfigurationError, DataQualityError, TelcomlError
from core.io import atomic_write_parquet, atomic_write_text, snapshot_time
from core.msisdn import MSISDN_PATTERN
from core.settings import Settings
from core.tasks import TASKS
from features.build import offline_file
from features.custom import custom_frame, write_custom
from features.provinces import ProvinceConfig, custom_subject, load_province, province_code, repeated
from features.quality import REJECT, WARN, Problem, QualityReport, check_indicators
from features.yamlfile import YamlFile

_MONTH = re.compile(r"^(\d{4})-?(0[1-9]|1[0-2])")
_BOOL = {"true": 1, "false": 0, "yes": 1, "no": 0, "y": 1, "n": 0, "t": 1, "f": 0}

#: A SQL source's time limit when the mapping gives none, and the most it may give (seconds).
DEFAULT_SQL_TIMEOUT_SECONDS = 300.0
MAX_SQL_TIMEOUT_SECONDS = 3600.0
#: The most rows a SQL source may return when the mapping gives no limit, and the most it may
#: allow: a row is a customer-month, and all of them are held in memory while checked.
DEFAULT_SQL_MAX_ROWS = 10_000_000
MAX_SQL_MAX_ROWS = 100_000_000
#: Databases whose read-only access and time limit are enforced (SQLAlchemy backend names).
SQL_BACKENDS = ("postgresql", "sqlite")
#: Rows fetched from the database at a time (a server-side cursor on PostgreSQL).
_SQL_BATCH_ROWS = 50_000
#: Previous generations of a province's files kept in ``offline/.previous/<PROVINCE>/``.
KEPT_GENERATIONS = 3
PREVIOUS_DIR = ".previous"
_JOURNAL = "generation.json"


class ByodWriteError(TelcomlError):
    """Writing a province's files failed or could not start; its earlier files are unchanged."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- SQL statements


def _identifier_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$" or ord(ch) > 127


def _sql_code(query: str, backend: str) -> str:
    """The query with comments and quoted text blanked (same length): what is left is the
    code the server parses, where a ``;`` separates statements.

    PostgreSQL's rules: ``--`` and nested ``/* */`` comments, ``'...'`` (``''`` doubles a
    quote; backslash escapes only in ``E'...'``), ``"..."`` identifiers and ``$tag$...$tag$``.
    SQLite's comments do not nest and it has no E'' or $-quoted text. Raises ValueError for
    text or a comment left open.
    """
    pg = backend == "postgresql"
    out = list(query)
    n, i = len(query), 0

    def blank(start: int, end: int) -> None:
        out[start:end] = " " * (end - start)

    while i < n:
        ch, nxt = query[i], query[i + 1 : i + 2]
        if ch == "-" and nxt == "-":
            end = query.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif ch == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if pg and query.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif query.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise ValueError("a /* comment is not closed")
            blank(i, j)
            i = j
        elif ch in "'\"":
            escapes = (
                pg
                and ch == "'"
                and i > 0
                and query[i - 1] in "eE"
                and (i < 2 or not _identifier_char(query[i - 2]))
            )
            j = i + 1
            while True:
                if j >= n:
                    raise ValueError(f"a {ch}-quoted text is not closed")
                if escapes and query[j] == "\\":
                    j += 2
                elif query[j] == ch and query[j + 1 : j + 2] == ch:
                    j += 2
                elif query[j] == ch:
                    break
                else:
                    j += 1
            blank(i + 1, j)
            i = j + 1
        elif pg and ch == "$" and (i == 0 or not _identifier_char(query[i - 1])):
            tag = re.match(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$", query[i:])
            if tag is None:
                i += 1
                continue
            end = query.find(tag.group(0), i + len(tag.group(0)))
            if end < 0:
                raise ValueError(f"a {tag.group(0)}-quoted text is not closed")
            blank(i + 1, end + len(tag.group(0)) - 1)
            i = end + len(tag.group(0))
        else:
            i += 1
    return "".join(out)


def single_select(query: str, backend: str) -> str:
    """The query as it is sent (trailing ``;`` and comments cut), or ValueError when it is not
    one SELECT (or WITH ... SELECT) statement.

    Several statements could end the read-only transaction (``COMMIT; INSERT ...``); the
    server's read-only mode and rollback are the second and third lines of defence.
    """
    code = _sql_code(query, backend)
    end = len(code.rstrip().rstrip(";").rstrip())  # a trailing ';' (and what follows it) is not sent
    body = code[:end]
    if not body.strip():
        raise ValueError("the query is empty")
    if ";" in body:
        raise ValueError(
            "holds more than one statement (a ';' before its end); a source query must be a single "
            "SELECT (or WITH ... SELECT) statement"
        )
    first = re.match(r"[\s(]*([A-Za-z_]+)", body)
    if first is None or first.group(1).lower() not in ("select", "with"):
        word = first.group(1).upper() if first else body.strip()[:20]
        raise ValueError(f"must be a SELECT (or WITH ... SELECT) query, not {word}")
    return query[:end]


def _backend(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).get_backend_name()
    except Exception:  # sqlalchemy.exc.ArgumentError and friends: not a URL at all
        raise ValueError(
            "not a database URL; write it as SQLAlchemy does, e.g. "
            "postgresql+psycopg://analyst@warehouse:5432/bass or sqlite:///exports/zj.db"
        ) from None


# --------------------------------------------------------------------------- the mapping


class SqlSource(_Strict):
    """A query on a database, run read-only as one statement within a time and a row limit."""

    url: str
    query: str
    #: the query is stopped after this long (PostgreSQL's statement_timeout; SQLite interrupted)
    timeout_seconds: float = Field(DEFAULT_SQL_TIMEOUT_SECONDS, gt=0, le=MAX_SQL_TIMEOUT_SECONDS)
    #: more rows than this are refused rather than read into memory
    max_rows: int = Field(DEFAULT_SQL_MAX_ROWS, ge=1, le=MAX_SQL_MAX_ROWS)

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        backend = _backend(value)
        if backend not in SQL_BACKENDS:
            raise ValueError(
                f"{backend} is not supported: read-only access and a time limit are enforced for "
                f"{' and '.join(SQL_BACKENDS)} sources only; export the table to Parquet or CSV "
                "files and give them under source.path"
            )
        return value

    @field_validator("query")
    @classmethod
    def _one_select(cls, value: str, info: ValidationInfo) -> str:
        url = info.data.get("url")
        single_select(value, _backend(url) if url else "postgresql")  # raises ValueError
        return value


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
        return [read_sql(src.sql)]
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


class _SqlLimit(Exception):
    """The query went past the mapping's time or row limit (the message says which)."""


def read_sql(sql: SqlSource) -> Part:
    """The query's rows, read read-only, as one statement, within the time and row limits.

    PostgreSQL: the session is read-only with a statement timeout from its first statement
    (connection options), the query runs in a ``READ ONLY`` transaction that is rolled back,
    through a server-side cursor (which cannot hold a second statement either). SQLite: the
    database file is opened ``mode=ro`` with ``query_only``, and interrupted at the time limit.
    """
    from sqlalchemy.engine import make_url

    url = make_url(sql.url)
    backend = url.get_backend_name()
    shown = f"sql {url.render_as_string(hide_password=True)}"
    query = single_select(sql.query, backend)
    limit = f"{sql.timeout_seconds:g} s"
    deadline = time.monotonic() + sql.timeout_seconds
    engine = None
    try:
        engine = _read_only_engine(url, sql.timeout_seconds, deadline)
        with engine.connect() as connection:
            if backend == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            result = connection.execution_options(stream_results=True, no_parameters=True).exec_driver_sql(
                query
            )
            columns = list(result.keys())
            chunks, rows = [], 0
            while batch := result.fetchmany(_SQL_BATCH_ROWS):
                rows += len(batch)
                if rows > sql.max_rows:
                    raise _SqlLimit(
                        f"returned more than {sql.max_rows:,} rows (source.sql.max_rows); narrow the "
                        "query (a range of months per run) or raise the limit"
                    )
                if time.monotonic() > deadline:
                    raise _SqlLimit(f"was still being read after {limit} (source.sql.timeout_seconds)")
                chunks.append(
                    pd.DataFrame.from_records([tuple(r) for r in batch], columns=columns, coerce_float=True)
                )
            connection.rollback()
    except _SqlLimit as err:
        raise ConfigurationError(f"the SQL source {shown} {err}; nothing was read") from None
    except Exception as err:  # driver, connection and SQL errors all mean: cannot read the source
        if _timed_out(err, deadline):
            raise ConfigurationError(
                f"the SQL source {shown} was stopped at its time limit of {limit} "
                f"(source.sql.timeout_seconds, at most {MAX_SQL_TIMEOUT_SECONDS:g} s); nothing was "
                "read. Make the query cheaper (fewer months, an index) or raise the limit"
            ) from None
        message = str(getattr(err, "orig", None) or err).strip().splitlines() or [""]
        raise ConfigurationError(
            f"cannot read the SQL source {shown} ({type(err).__name__}: {message[0]})"
        ) from None
    finally:
        if engine is not None:
            engine.dispose()
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns)
    return Part(shown, frame)


def _read_only_engine(url, timeout_seconds: float, deadline: float):
    """An engine whose connections can only read, and stop at the time limit."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ConfigurationError(
                f"the SQLite source {url} must name a database file (sqlite:///path/to/file.db)"
            )
        if not Path(database).is_file():
            raise ConfigurationError(f"the SQLite source's database file {database} does not exist")
        uri = f"{Path(database).resolve().as_uri()}?mode=ro"

        def connect() -> sqlite3.Connection:
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            connection.execute("PRAGMA query_only = ON")
            # called every 10,000 virtual machine steps: a non-zero answer interrupts the query
            connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            return connection

        return create_engine("sqlite://", creator=connect, poolclass=NullPool)
    options = " ".join(
        [
            str(url.query.get("options", "")),  # the URL's own options first: ours win
            "-c default_transaction_read_only=on",
            f"-c statement_timeout={max(1, round(timeout_seconds * 1000))}",
        ]
    ).strip()
    return create_engine(
        url.difference_update_query(["options"]),
        poolclass=NullPool,
        connect_args={"options": options, "connect_timeout": max(2, min(30, round(timeout_seconds)))},
    )


def _timed_out(err: Exception, deadline: float) -> bool:
    """Whether the database stopped the query at the time limit."""
    orig = getattr(err, "orig", err)
    if getattr(orig, "sqlstate", None) == "57014":  # PostgreSQL's query_canceled
        return True
    return (
        isinstance(orig, sqlite3.OperationalError)
        and "interrupt" in str(orig)
        and time.monotonic() >= deadline
    )


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
    models_labelled: list[str]
    report: QualityReport
    offline_files: int
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
    mapping, source, config = read_mapping(mapping_path, settings)
    _require_indicators(mapping, source, config)
    data, report = _checked_data(mapping, mapping_path, config)
    province = mapping.province
    months = sorted(data["month"].unique())
    custom = _custom_indicators(data, months, config, mapping_path)
    labelled = [
        t for t in dict.fromkeys(mapping.labels.values()) if data[TASKS[t].label_spec.id].notna().any()
    ]
    created = pd.Timestamp.now(tz="UTC")
    with _province_lock(settings, province):
        recovered = recover_interrupted(settings, province)
        before = province_months(settings, province)
        outputs = _offline_outputs(settings, data, months, config, custom, created)
        labels = _labels(settings, data, province, labelled, replace)
        labels_path = settings.labels_dir / f"{province}.parquet"
        if labels is not None:
            outputs[labels_path] = lambda path: atomic_write_parquet(labels, path)
        stamp = _stamp()
        changes = _plan(settings, province, outputs, months, replace, labels_path, stamp)
        previous = _swap_generation(settings, province, changes, outputs, replace, before, months, stamp)
        _prune_generations(settings, province)
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


Writer = Callable[[Path], None]


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
    from features.store import apply_repository, materialize_latest

    store = apply_repository(settings)
    materialize_latest(store, month)


# --------------------------------------------------------------------------- generations


def previous_dir(settings: Settings, province: str) -> Path:
    """Where a province's previous generations are kept: ``offline/.previous/<PROVINCE>/``."""
    return settings.offline_dir / PREVIOUS_DIR / province


def _province_subjects(province: str) -> list[str]:
    return [*lib.SUBJECTS, custom_subject(province)]


def province_files(settings: Settings, province: str) -> list[Path]:
    """The province's offline files, every view."""
    return sorted(
        path
        for subject in _province_subjects(province)
        for path in (settings.offline_dir / subject).glob(f"{province}_*.parquet")
    )


def province_months(settings: Settings, province: str) -> list[str]:
    """The months of which the province has offline files."""
    return sorted({path.stem.split("_", 1)[1] for path in province_files(settings, province)})


@dataclass(frozen=True)
class FileChange:
    """One file of a run: written anew (``staged`` is its complete new version under a
    temporary name) or removed (``staged`` None); ``kept`` when an earlier version exists and
    is kept in the previous generation. Paths are relative to the work directory."""

    final: str
    staged: str | None
    kept: bool


def _staged_name(final: Path, stamp: str) -> Path:
    # not *.parquet: neither Feast's globs nor the labels' see a staged file
    return final.with_name(f".{final.name}.{stamp}.staged")


def _plan(
    settings: Settings,
    province: str,
    outputs: dict[Path, Writer],
    months: list[str],
    replace: bool,
    labels_path: Path,
    stamp: str,
) -> list[FileChange]:
    """What the run changes (pure apart from looking at which files exist): every output written;
    the province's other files of the source's months removed, and with ``replace`` all of its
    other files and its labels file."""
    workdir = settings.workdir

    def rel(path: Path) -> str:
        return str(path.relative_to(workdir))

    changes = [FileChange(rel(p), rel(_staged_name(p, stamp)), p.exists()) for p in outputs]
    existing = [*province_files(settings, province), *([labels_path] if labels_path.exists() else [])]
    for path in existing:
        if path in outputs:
            continue
        month = path.stem.split("_", 1)[1] if path != labels_path else None
        if replace or path == labels_path or month in months:  # labels: none left after the merge
            changes.append(FileChange(rel(path), None, True))
    return changes


def _stamp() -> str:
    """A sortable name for a run's generation (UTC, microseconds)."""
    return pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%fZ")


def _swap_generation(
    settings: Settings,
    province: str,
    changes: list[FileChange],
    outputs: dict[Path, Writer],
    replace: bool,
    before: list[str],
    months: list[str],
    stamp: str,
) -> Path | None:
    """Write every new file completely, keep the ones it replaces, then swap them in.

    1. the journal (the plan) is written first; 2. each new file is written to its staged name
    and synced; 3. each file to be replaced or removed is hard-linked into the previous
    generation's folder; 4. each staged file is renamed over its final name, each removed file
    unlinked (``_install``); 5. the journal says "done". An exception at any step undoes the
    run (``_roll_back``); a killed process leaves the journal, which the next run undoes.
    Returns the previous generation's folder, or None when the run replaced nothing.
    """
    workdir = settings.workdir
    folder = previous_dir(settings, province) / stamp
    journal = {
        "province": province,
        "stamp": stamp,
        "replace": replace,
        "state": "writing",
        "months_before": before,
        "months_source": months,
        "changes": [c.__dict__ for c in changes],
    }
    try:
        folder.mkdir(parents=True)
        _write_journal(folder, journal)
        for change in changes:
            if change.staged is not None:
                staged = workdir / change.staged
                outputs[workdir / change.final](staged)
                _fsync(staged)
        for change in changes:
            if change.kept:
                _keep(workdir / change.final, folder / change.final)
        for change in changes:
            _install(workdir, change)
        for directory in {(workdir / c.final).parent for c in changes}:
            _fsync(directory)
        journal["state"] = "done"
        journal["finished"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
        _write_journal(folder, journal)
    except BaseException as err:  # an interrupt too: undo, then let it go on
        what = str(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
        try:
            _roll_back(settings, folder, journal)
        except Exception as undo:  # the disk refuses even the undo: the next run retries it
            raise ByodWriteError(
                f"writing {province}'s files failed ({what}) and undoing the run failed too ({undo}); "
                f"the earlier files are kept in {folder}, and the next `telcoml byod` of {province} "
                "puts them back"
            ) from None
        if isinstance(err, Exception):
            raise ByodWriteError(
                f"writing {province}'s files failed ({what}); the run was undone and its earlier "
                "files are unchanged"
            ) from None
        raise
    if not any(c.kept for c in changes):  # nothing replaced: no previous generation to keep
        _remove_generation(folder)
        return None
    return folder


def _install(workdir: Path, change: FileChange) -> None:
    """Put one file of the new generation in place: an atomic rename (or the removal)."""
    final = workdir / change.final
    if change.staged is None:
        final.unlink(missing_ok=True)
    else:
        os.replace(workdir / change.staged, final)


def _keep(final: Path, copy: Path) -> None:
    """Keep the current version of ``final`` at ``copy``: a hard link, or a complete copy."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.unlink(missing_ok=True)
    try:
        os.link(final, copy)
    except OSError:  # a file system without hard links
        partial = copy.with_name(f".{copy.name}.partial")
        shutil.copy2(final, partial)
        os.replace(partial, copy)  # the copy exists only when complete


def _roll_back(settings: Settings, folder: Path, journal: dict) -> None:
    """Undo a run that did not finish: every earlier version back in place, every file it
    added removed, its staged files and folder deleted. Safe to repeat (a crash while undoing)."""
    workdir = settings.workdir
    stamp = journal["stamp"]
    for change in map(lambda c: FileChange(**c), journal["changes"]):
        final = workdir / change.final
        copy = folder / change.final
        if change.kept:
            if copy.exists():
                os.replace(copy, final)
        elif change.staged is not None:
            final.unlink(missing_ok=True)  # a file this run added
        if change.staged is not None:
            for leftover in final.parent.glob(glob.escape(f".{final.name}.{stamp}.staged") + "*"):
                leftover.unlink(missing_ok=True)
    _remove_generation(folder)


def _remove_generation(folder: Path) -> None:
    """Delete a generation's folder, its journal last."""
    if not folder.exists():
        return
    for child in folder.iterdir():
        if child.name == _JOURNAL:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    (folder / _JOURNAL).unlink(missing_ok=True)
    folder.rmdir()


def _write_journal(folder: Path, journal: dict) -> None:
    atomic_write_text(json.dumps(journal, indent=1), folder / _JOURNAL, mode=0o644)
    _fsync(folder / _JOURNAL)


def _read_journal(folder: Path) -> dict | None:
    try:
        return json.loads((folder / _JOURNAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def recover_interrupted(settings: Settings, province: str) -> list[str]:
    """Undo the province's runs that were interrupted (journal not "done"); what was undone."""
    done = []
    root = previous_dir(settings, province)
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.exists() else []:
        journal = _read_journal(folder)
        if journal is not None and journal.get("state") != "done":
            _roll_back(settings, folder, journal)
            done.append(
                f"an interrupted byod run of {province} ({journal['stamp']}) was undone: its earlier "
                f"files are back in place"
            )
    return done


def _prune_generations(settings: Settings, province: str, keep: int = KEPT_GENERATIONS) -> None:
    """Keep the ``keep`` latest previous generations; remove older ones and leftovers."""
    root = previous_dir(settings, province)
    finished = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        journal = _read_journal(folder)
        if journal is None:  # a folder whose journal was never written or already removed
            shutil.rmtree(folder, ignore_errors=True)
        elif journal.get("state") == "done":
            finished.append(folder)
    for folder in finished[:-keep] if keep else finished:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _province_lock(settings: Settings, province: str) -> Iterator[None]:
    """One run at a time changes a province's files."""
    root = previous_dir(settings, province)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ByodWriteError(
                f"another `telcoml byod` run of {province} is writing its files ({root / '.lock'}); "
                "run again when it has finished"
            ) from None
        yield


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "DataMapping",
    "read_mapping",
    "run_byod",
    "ByodResult",
    "ByodWriteError",
    "recover_interrupted",
    "previous_dir",
    "single_select",
    "KEPT_GENERATIONS",
]
