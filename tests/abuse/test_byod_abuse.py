"""Bring-your-own-data probes replayed against the real CLI, with the fixed behaviour asserted.

* A mapping that maps no indicator (``columns: {}``) passed the gate, deleted the province's
  60 offline files and materialized a customer with every indicator empty: now refused,
  naming the file and the key, and the history is byte for byte what it was.
* A source with fewer months deleted the province's other months: now they are kept unless
  ``--replace`` is given, and then the previous generation is kept, and a failure or a kill in
  the middle of the swap leaves (or brings back) the old generation.
* A SQL source ran anything (``COMMIT; INSERT ...; COMMIT; SELECT ...`` persisted its row) with
  no time limit (``pg_sleep(8)`` ran to the end): now one read-only SELECT within a limit.

The history is built once per module from the tiny world (one run, a few seconds); each test
works in its own copy. Refusals publish nothing and take well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

import features.generations as generations_module
import features.sqlsource as sqlsource_module
from core.settings import Settings
from features.byod import run_byod
from features.generations import KEPT_GENERATIONS, previous_dir, prune_generations
from features.sqlsource import SqlSource, read_sql, single_select
from telcoml import cli
from telcoml.cli import app
from tests.byod_data import PROVINCE_FILE, write_case

runner = CliRunner()
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04"]
POSTGRES = os.environ.get("TELCOML_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli.console, "width", 400)


@dataclass
class Case:
    settings: Settings
    mapping: Path
    csv: Path
    #: the mapping as written by tests.byod_data (a CSV source, every column, both labels)
    original: str

    @property
    def workdir(self) -> Path:
        return self.settings.workdir

    def byod(self, *args: str):
        """``telcoml byod MAPPING --workdir WORK [args]``: (result, its output on one line)."""
        result = runner.invoke(app, ["byod", str(self.mapping), "--workdir", str(self.workdir), *args])
        assert "Traceback" not in result.output
        return result, " ".join(result.output.split())

    def with_source(self, source: str, columns: str | None = None, labels: bool = True) -> None:
        """The original mapping with another source (YAML lines under ``source:``), other
        columns, and without its labels."""
        text = self.original.replace("  path: zj_customers.csv\n", source)
        if columns is not None:
            head, rest = text.split("columns:\n", 1)
            text = head + f"columns: {columns}\n" + rest[rest.index("labels:") :]
        if not labels:
            head, rest = text.split("labels:\n", 1)
            text = head + rest[rest.index("codes:") :]
        self.mapping.write_text(text)


@pytest.fixture(scope="module")
def zj_history(tiny_world, tmp_path_factory) -> tuple[Path, Path]:
    """A work directory in which ZJ brought four months of its own data (and that data)."""
    root = tmp_path_factory.mktemp("byod_abuse")
    settings = Settings(workdir=root / "work")
    settings.provinces_dir.mkdir(parents=True)
    (settings.provinces_dir / "ZJ.yaml").write_text(PROVINCE_FILE)
    mapping = write_case(tiny_world, root / "zj")
    result = run_byod(settings, mapping)
    assert result.months == MONTHS and result.offline_files == 24
    return settings.workdir, mapping.parent


@pytest.fixture()
def zj(zj_history, tmp_path) -> Case:
    workdir, case = tmp_path / "work", tmp_path / "zj"
    shutil.copytree(zj_history[0], workdir)
    shutil.copytree(zj_history[1], case)
    mapping = case / "mapping.yaml"
    return Case(Settings(workdir=workdir), mapping, case / "zj_customers.csv", mapping.read_text())


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> a digest of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def zj_files(settings: Settings) -> dict[str, str]:
    """ZJ's offline files and labels (not its previous generations) -> digests."""
    every = snapshot(settings.workdir)
    return {
        path: digest
        for path, digest in every.items()
        if (path.startswith("offline/") and "/ZJ_" in path and "/.previous/" not in f"/{path}")
        or path == "labels/ZJ.parquet"
    }


def generations(settings: Settings) -> list[Path]:
    root = previous_dir(settings, "ZJ")
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def months_of(files: dict[str, str]) -> list[str]:
    return sorted({Path(p).stem.split("_", 1)[1] for p in files if p.startswith("offline/")})


def of_months(files: dict[str, str], *months: str) -> dict[str, str]:
    """The offline files of those months."""
    return {p: d for p, d in files.items() if p.startswith("offline/") and Path(p).stem.endswith(months)}


# --------------------------------------------------------------------------- item 4: no indicator


def test_a_mapping_of_no_indicator_is_refused_and_the_history_is_intact(zj):
    """The probe: ZJ, ``columns: {}``, a query returning one row."""
    db = zj.mapping.parent / "warehouse.db"
    # through SQLAlchemy: pandas' to_sql on a raw sqlite3 connection registers its own
    # process-wide datetime adapters and converters, which break Feast's SQLite store after it
    pd.read_csv(zj.csv, dtype=str).head(1).to_sql("zj_kehu", create_engine(f"sqlite:///{db}"), index=False)
    zj.with_source(f"  sql:\n    url: sqlite:///{db}\n    query: select * from zj_kehu\n", "{}", labels=False)
    before = snapshot(zj.workdir)

    result, text = zj.byod()

    assert result.exit_code == 1
    line = zj.mapping.read_text().splitlines().index("columns: {}") + 1
    assert f"{zj.mapping}:{line}: columns: maps no indicator" in text and "passed the gate" not in text
    assert snapshot(zj.workdir) == before  # the 60-file probe: here all 24 files and the labels
    assert months_of(zj_files(zj.settings)) == MONTHS


def test_a_mapped_column_without_any_value_is_refused_naming_it(zj):
    frame = pd.read_csv(zj.csv, dtype=str)
    frame["LL_MB"] = ""  # data_mb may be empty for a customer, not for everyone
    frame.to_csv(zj.csv, index=False)
    zj.with_source("  path: zj_customers.csv\n", "{LL_MB: data_mb}", labels=False)
    before = snapshot(zj.workdir)

    result, text = zj.byod()

    assert result.exit_code == 1
    assert f"{zj.csv}: column LL_MB (-> data_mb): empty in every one of the {len(frame):,} rows" in text
    assert snapshot(zj.workdir) == before


def test_a_month_without_any_indicator_value_is_refused(zj, tmp_path):
    frame = pd.read_csv(zj.csv, dtype=str)
    february = frame["TJ_YF"] == "202602"
    frame.loc[february, ["LL_MB", "MYD"]] = ""
    frame.to_csv(zj.csv, index=False)
    zj.with_source("  path: zj_customers.csv\n", "{LL_MB: data_mb, MYD: complaint_satisfaction}", False)
    (zj.settings.provinces_dir / "ZJ.yaml").unlink()  # its own ZDY_PF column would count too
    before = snapshot(zj.workdir)

    result, text = zj.byod()

    assert result.exit_code == 1
    assert "column TJ_YF: month 2026-02: none of the 2 mapped indicator columns has a value" in text
    assert f"in any of its {february.sum():,} rows; it would be published with every indicator empty" in text
    assert snapshot(zj.workdir) == before


# --------------------------------------------------------------------------- item 4: history


def test_without_replace_a_partial_source_keeps_the_other_months_and_their_labels(zj):
    before = zj_files(zj.settings)
    old_labels = pd.read_parquet(zj.settings.labels_dir / "ZJ.parquet")
    frame = pd.read_csv(zj.csv, dtype=str)
    frame[frame["TJ_YF"].isin(["202603", "202604"])].to_csv(zj.csv, index=False)

    result, text = zj.byod()

    assert result.exit_code == 0, result.output
    after = zj_files(zj.settings)
    assert months_of(after) == MONTHS
    assert of_months(after, "2026-01", "2026-02") == of_months(before, "2026-01", "2026-02")
    assert "added none; updated 2026-03, 2026-04; kept 2026-01, 2026-02 (not in the source" in text
    labels = pd.read_parquet(zj.settings.labels_dir / "ZJ.parquet")
    assert sorted(labels["month"].unique()) == MONTHS and len(labels) == len(old_labels)
    early = old_labels["month"].isin(["2026-01", "2026-02"])
    pd.testing.assert_frame_equal(
        labels[labels["month"].isin(["2026-01", "2026-02"])].reset_index(drop=True),
        old_labels[early].sort_values(["month", "msisdn"]).reset_index(drop=True),
    )
    # the files it replaced are the previous generation, where the output says
    (folder,) = generations(zj.settings)
    assert f"previous generation (13 files replaced or removed) kept in {folder}" in text
    kept = snapshot(folder)
    replaced = {**of_months(before, "2026-03", "2026-04"), "labels/ZJ.parquet": before["labels/ZJ.parquet"]}
    assert {p: kept[p] for p in replaced} == replaced
    assert json.loads((folder / "generation.json").read_text())["state"] == "done"


def test_replace_leaves_exactly_the_new_months_and_keeps_the_previous_generation(zj):
    before = zj_files(zj.settings)
    frame = pd.read_csv(zj.csv, dtype=str)
    frame[frame["TJ_YF"].isin(["202603", "202604"])].to_csv(zj.csv, index=False)

    result, text = zj.byod("--replace")

    assert result.exit_code == 0, result.output
    after = zj_files(zj.settings)
    assert months_of(after) == ["2026-03", "2026-04"] and len(after) == 12 + 1
    labels = pd.read_parquet(zj.settings.labels_dir / "ZJ.parquet")
    assert sorted(labels["month"].unique()) == ["2026-03", "2026-04"]
    assert "replaced ZJ's whole history: now 2026-03, 2026-04; removed 2026-01, 2026-02" in text
    (folder,) = generations(zj.settings)
    assert f"previous generation (25 files replaced or removed) kept in {folder}" in text
    kept = snapshot(folder)
    assert {p: kept[p] for p in before} == before  # every old file, byte for byte
    for path in before:  # and readable
        assert len(pd.read_parquet(folder / path)) > 0
    assert not list(zj.workdir.rglob("*.staged*"))


def test_a_failure_in_the_middle_of_a_replace_leaves_the_old_generation(zj, monkeypatch):
    before = zj_files(zj.settings)
    frame = pd.read_csv(zj.csv, dtype=str)
    frame[frame["TJ_YF"] == "202604"].to_csv(zj.csv, index=False)
    install, calls = generations_module._install, []

    def disk_full_after_the_first_file(workdir, change):
        calls.append(change)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        install(workdir, change)

    monkeypatch.setattr(generations_module, "_install", disk_full_after_the_first_file)

    result, text = zj.byod("--replace")

    assert result.exit_code == 1 and len(calls) == 2
    assert "writing ZJ's files failed ([Errno 28] No space left on device)" in text
    assert "the run was undone and its earlier files are unchanged" in text
    assert zj_files(zj.settings) == before
    for path in before:
        assert len(pd.read_parquet(zj.workdir / path)) > 0
    assert generations(zj.settings) == [] and not list(zj.workdir.rglob("*.staged*"))


def test_a_replace_killed_in_the_middle_is_undone_by_the_next_run(zj, monkeypatch):
    """A kill cannot run the undo: the journal stays, the old generation is complete in the
    previous generation's folder, and the next run puts it back before its own swap."""
    before = zj_files(zj.settings)
    frame = pd.read_csv(zj.csv, dtype=str)
    frame[frame["TJ_YF"] == "202604"].to_csv(zj.csv, index=False)
    install, calls = generations_module._install, []

    def killed_after_three_files(workdir, change):
        calls.append(change)
        if len(calls) > 3:
            raise KeyboardInterrupt  # stands for the kill; the undo is disabled below
        install(workdir, change)

    monkeypatch.setattr(generations_module, "_install", killed_after_three_files)
    monkeypatch.setattr(generations_module, "_roll_back", lambda *_args: None)
    result, _ = zj.byod("--replace")
    assert result.exit_code != 0 and zj_files(zj.settings) != before  # a mix on disk
    (interrupted,) = generations(zj.settings)
    assert json.loads((interrupted / "generation.json").read_text())["state"] == "writing"
    kept = snapshot(interrupted)
    assert {p: kept[p] for p in before} == before  # the old generation, complete and readable
    monkeypatch.undo()

    result, text = zj.byod("--replace")

    assert result.exit_code == 0, result.output
    assert f"an interrupted byod run of ZJ ({interrupted.name}) was undone" in text
    assert not interrupted.exists() and not list(zj.workdir.rglob("*.staged*"))
    assert months_of(zj_files(zj.settings)) == ["2026-04"]
    (folder,) = generations(zj.settings)  # the undo put every old file back, byte for byte
    kept = snapshot(folder)
    assert {p: kept[p] for p in before} == before


def test_a_second_run_of_the_province_at_the_same_time_is_refused(zj):
    before = zj_files(zj.settings)
    with generations_module.province_lock(zj.settings, "ZJ"):  # another run, writing
        result, text = zj.byod("--replace")
    assert result.exit_code == 1 and "another `telcoml byod` run of ZJ is writing its files" in text
    assert zj_files(zj.settings) == before


def test_only_the_latest_previous_generations_are_kept(tmp_path):
    settings = Settings(workdir=tmp_path / "work")
    root = previous_dir(settings, "ZJ")
    for stamp in ["20260101T000000000000Z", "20260102T000000000000Z", "20260103T000000000000Z"]:
        (root / stamp).mkdir(parents=True)
        (root / stamp / "generation.json").write_text(json.dumps({"state": "done"}))
    (root / "20260104T000000000000Z").mkdir()  # a leftover without a journal
    (root / "20260105T000000000000Z").mkdir()
    (root / "20260105T000000000000Z" / "generation.json").write_text(json.dumps({"state": "done"}))

    prune_generations(settings, "ZJ")

    kept = sorted(p.name for p in root.iterdir())
    assert KEPT_GENERATIONS == 3
    assert kept == ["20260102T000000000000Z", "20260103T000000000000Z", "20260105T000000000000Z"]


# --------------------------------------------------------------------------- item 5: SQL


@pytest.mark.parametrize(
    "query",
    [
        "select * from zj_kehu",
        "  SELECT 1 ;  ",
        "select 1; -- a comment after the end",
        "with m as (select 1 as x) select * from m",
        "(select 1) union (select 2)",
        "select ';' as a, 'it''s; fine' as b, \"odd;name\" from t -- ; here\n",
        "select /* ; /* nested ; */ still a comment ; */ 1",
        "select $$ ; $$, $tag$ ; $notag$ ; $tag$",
        "select E'\\'; still text' as a",
    ],
)
def test_one_select_passes(query):
    assert ";" not in _code(single_select(query, "postgresql"))


def _code(query: str) -> str:
    return sqlsource_module._sql_code(query, "postgresql").strip()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("COMMIT; INSERT INTO t VALUES (1); COMMIT; SELECT 1", "more than one statement"),
        ("select 1; select 2", "more than one statement"),
        ("select '\\'; delete from t; --'", "more than one statement"),  # backslash is text in '...'
        ("select $a$ x $a$; drop table t", "more than one statement"),
        ("select 1 /* ; */ ; drop table t", "more than one statement"),
        ("insert into t values (1)", "must be a SELECT (or WITH ... SELECT) query, not INSERT"),
        ("set default_transaction_read_only = off", "not SET"),
        ("  ;  ", "the query is empty"),
        ("select 'unclosed", "not closed"),
        ("select 1 /* unclosed", "not closed"),
    ],
)
def test_anything_but_one_select_is_refused(query, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        single_select(query, "postgresql")


def test_sql_databases_and_limits_are_checked_with_the_mapping(zj):
    zj.with_source("  sql:\n    url: mysql+pymysql://bass@warehouse/bass\n    query: select 1\n")
    result, text = zj.byod()
    assert result.exit_code == 1 and "source.sql.url: mysql is not supported" in text

    zj.with_source("  sql:\n    url: sqlite:///x.db\n    query: select 1\n    timeout_seconds: 86400\n")
    result, text = zj.byod()
    assert result.exit_code == 1
    assert "source.sql.timeout_seconds: Input should be less than or equal to 3600" in text


def _sqlite_case(zj: Case, query: str, extra: str = "") -> Path:
    db = zj.mapping.parent / "warehouse.db"
    pd.read_csv(zj.csv, dtype=str).to_sql(  # through SQLAlchemy: see the empty-mapping probe
        "zj_kehu", create_engine(f"sqlite:///{db}"), index=False, if_exists="replace"
    )
    zj.with_source(f"  sql:\n    url: sqlite:///{db}\n    query: {json.dumps(query)}\n{extra}")
    return db


def test_a_sqlite_source_is_one_select_stopped_at_its_limits(zj):
    before = snapshot(zj.workdir)
    db = _sqlite_case(zj, "select * from zj_kehu; delete from zj_kehu")
    result, text = zj.byod()
    assert result.exit_code == 1 and "source.sql.query: holds more than one statement" in text

    forever = "with recursive c(x) as (select 1 union all select x + 1 from c) select max(x) from c"
    _sqlite_case(zj, forever, "    timeout_seconds: 1\n")
    started = time.perf_counter()
    result, text = zj.byod()
    seconds = time.perf_counter() - started
    assert result.exit_code == 1 and seconds < 5
    assert (
        f"the SQL source sql sqlite:///{db} was stopped at its time limit of 1 s (source.sql.timeout_seconds"
        in text
    )

    _sqlite_case(zj, "select * from zj_kehu", "    max_rows: 100\n")
    result, text = zj.byod()
    assert result.exit_code == 1 and "returned more than 100 rows (source.sql.max_rows)" in text
    assert snapshot(zj.workdir) == before
    with sqlite3.connect(db) as connection:
        assert connection.execute("select count(*) from zj_kehu").fetchone()[0] == len(pd.read_csv(zj.csv))


@pytest.fixture()
def probe_table():
    """An empty table the probes try to write to, and a function that writes to it."""
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES)
    with engine.begin() as connection:
        connection.execute(text("drop table if exists byod_abuse_probe"))
        connection.execute(text("create table byod_abuse_probe (msisdn text)"))
        connection.execute(
            text(
                "create or replace function byod_abuse_write() returns text language plpgsql as "
                "$$ begin insert into byod_abuse_probe values ('13800000000'); return '13800000000'; end $$"
            )
        )

    def rows() -> int:
        with engine.connect() as connection:
            return connection.execute(text("select count(*) from byod_abuse_probe")).scalar_one()

    yield rows
    with engine.begin() as connection:
        connection.execute(text("drop table if exists byod_abuse_probe"))
        connection.execute(text("drop function if exists byod_abuse_write()"))
    engine.dispose()


@pytest.mark.postgres
def test_postgres_commit_insert_commit_select_persists_nothing(zj, probe_table):
    before = snapshot(zj.workdir)
    query = (
        "COMMIT; INSERT INTO byod_abuse_probe VALUES ('13800000000'); COMMIT; "
        "SELECT '13800000000' AS \"SHOUJI_HAO\", '202604' AS \"TJ_YF\""
    )
    zj.with_source(f"  sql:\n    url: {POSTGRES}\n    query: {json.dumps(query)}\n")

    result, text = zj.byod()

    assert result.exit_code == 1 and "source.sql.query: holds more than one statement" in text
    assert probe_table() == 0 and snapshot(zj.workdir) == before


@pytest.mark.postgres
def test_postgres_reads_in_a_read_only_transaction(zj, probe_table, monkeypatch):
    """Behind the one-statement rule: a write inside a SELECT is refused by the server, and so
    is a second statement should one get past the rule (a server-side cursor holds one)."""
    zj.with_source(f'  sql:\n    url: {POSTGRES}\n    query: select byod_abuse_write() as "SHOUJI_HAO"\n')
    result, text = zj.byod()
    assert result.exit_code == 1 and "read-only transaction" in text and probe_table() == 0

    monkeypatch.setattr(sqlsource_module, "single_select", lambda query, _backend: query)
    sql = SqlSource.model_construct(
        url=POSTGRES,
        query="COMMIT; INSERT INTO byod_abuse_probe VALUES ('1'); COMMIT; SELECT 1",
        timeout_seconds=5.0,
        max_rows=10,
    )
    with pytest.raises(Exception, match="cannot read the SQL source"):
        read_sql(sql)
    assert probe_table() == 0


@pytest.mark.postgres
def test_postgres_pg_sleep_is_stopped_at_the_time_limit(zj):
    before = snapshot(zj.workdir)
    zj.with_source(f"  sql:\n    url: {POSTGRES}\n    query: SELECT pg_sleep(8)\n    timeout_seconds: 1\n")

    started = time.perf_counter()
    result, text = zj.byod()
    seconds = time.perf_counter() - started

    assert result.exit_code == 1 and seconds < 4, seconds
    assert (
        f"the SQL source sql {POSTGRES} was stopped at its time limit of 1 s (source.sql.timeout_seconds"
        in text
    )
    assert snapshot(zj.workdir) == before
