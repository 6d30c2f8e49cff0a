"""Reading a SQL source safely: one read-only SELECT within a time and a row limit.

A bring-your-own-data mapping (``features.byod``) may name a query on a province's database
instead of files. The query is written by people and runs against a warehouse that holds the
province's real customers, so reading it is kept apart from the mapping and the gate, in one
place that can be read and reviewed alone:

* the query must be one SELECT (or WITH ... SELECT) statement (``single_select``: comments
  and quoted text are blanked first, so a ``;`` inside them does not count and one outside
  them is refused);
* it runs read-only (a read-only transaction on PostgreSQL, a ``mode=ro`` connection with
  ``query_only`` on SQLite, the two dialects supported: ``SQL_BACKENDS``);
* within ``timeout_seconds`` (default 300 s, at most 3600 s) and ``max_rows`` (default
  10 million): past either, nothing is read and the message says which limit was reached.

``read_sql`` returns the rows as a DataFrame; the caller names the source in its messages
with ``source_label``. This module knows nothing of the mapping (``features.byod`` imports
it, never the reverse).
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from core.errors import ConfigurationError

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


class _Strict(BaseModel):
    """A part of a mapping: unknown keys are refused and values frozen (also the base of
    ``features.byod``'s mapping models)."""

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


# --------------------------------------------------------------------------- the source


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


def source_label(sql: SqlSource) -> str:
    """How messages name the source: ``sql`` and its URL, without the password."""
    from sqlalchemy.engine import make_url

    return f"sql {make_url(sql.url).render_as_string(hide_password=True)}"


# --------------------------------------------------------------------------- reading


class _SqlLimit(Exception):
    """The query went past the mapping's time or row limit (the message says which)."""


def read_sql(sql: SqlSource) -> pd.DataFrame:
    """The query's rows, read read-only, as one statement, within the time and row limits.

    PostgreSQL: the session is read-only with a statement timeout from its first statement
    (connection options), the query runs in a ``READ ONLY`` transaction that is rolled back,
    through a server-side cursor (which cannot hold a second statement either). SQLite: the
    database file is opened ``mode=ro`` with ``query_only``, and interrupted at the time limit.
    """
    from sqlalchemy.engine import make_url

    url = make_url(sql.url)
    backend = url.get_backend_name()
    shown = source_label(sql)
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
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns)


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


__all__ = [
    "SqlSource",
    "read_sql",
    "single_select",
    "source_label",
    "SQL_BACKENDS",
    "DEFAULT_SQL_TIMEOUT_SECONDS",
    "MAX_SQL_TIMEOUT_SECONDS",
    "DEFAULT_SQL_MAX_ROWS",
    "MAX_SQL_MAX_ROWS",
]
