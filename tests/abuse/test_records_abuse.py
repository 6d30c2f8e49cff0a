"""Monitoring records under abuse: a server killed with SIGKILL, a full disk, torn writes.

Every customer the service answered is journaled before the answer leaves
(``monitoring.journal.ScoreJournal``): killing the whole server must lose none of them
once the journal is recovered, and a disk that takes nothing must cost a bounded amount
of memory, dropping the newest records with a warning that says how many.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import stat
import time

import httpx
import numpy as np
import pandas as pd
import psutil
import pytest

import monitoring.record as record
import serving.scorelog as scorelog
from core import indicators as lib
from core.settings import Settings
from monitoring.journal import (
    ScoreJournal,
    convert_segment,
    journal_dir,
    live_entry,
    read_entries,
    recover_journal,
)
from monitoring.record import ScoreLog, customer_keys, read_week, recorded_weeks
from serving.online import Features
from serving.scorelog import DeferredScoreLog

MODELS = {"churn": "models:/telcoml-churn/3", "credit_grade": "models:/telcoml-credit_grade/2"}
ANSWER = {
    "credit_grade": {"code": 3},
    "tariff_sensitivity": {"score": 41.5},
    "complaint_sensitivity": {"score": 20.0},
    "churn": {"probability": 0.12},
    "channel_preference": {"best_channel": "hotline_10086"},
}
CATEGORIES = {"province", "customer_category", "brand", "payment_method", "terminal_class"}


def customers(first: int, n: int = 1, province: str = "GD") -> Features:
    """``n`` customers as the online store hands them to the service (object columns)."""
    rng = np.random.default_rng(first)
    columns = {"msisdn": np.array([f"138{first + i:08d}" for i in range(n)], dtype=object)}
    for indicator in lib.CATALOGUE:
        if indicator.id == "province":
            values = [province] * n
        elif indicator.id in CATEGORIES:
            values = [f"c{v}" for v in rng.integers(0, 4, n)]
        else:
            values = rng.random(n).tolist()
        columns[indicator.id] = np.array(values, dtype=object)
    return Features(columns, ["2026-06-30T23:59:59+00:00"] * n)


def recorded(settings: Settings) -> pd.DataFrame:
    frames = [read_week(settings, week) for week in recorded_weeks(settings)]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["customer_key"])


class Warnings(logging.Handler):
    """The warnings of a logger, whatever its propagation (the service's logger does not propagate)."""

    def __init__(self, *names: str):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.loggers = [logging.getLogger(n) for n in names]

    def emit(self, entry: logging.LogRecord) -> None:
        self.messages.append(entry.getMessage())

    def __enter__(self) -> Warnings:
        for logger in self.loggers:
            logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        for logger in self.loggers:
            logger.removeHandler(self)


def die(journal: ScoreJournal) -> None:
    """What SIGKILL does to a writer: its files stay, its descriptors and lock go."""
    os.close(journal._fd)
    os.close(journal._lock_fd)


def dropped_total() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("telcoml_monitoring_records_dropped_total") or 0.0


@pytest.fixture
def full_disk(monkeypatch):
    """Nothing can be written under the monitoring directory: journal writes and Parquet
    files fail with ENOSPC. Undone by calling it (space freed)."""
    real_write = os.write

    def write(fd: int, data) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if "/monitoring/" in target:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def parquet(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(record, "atomic_write_parquet", parquet)
    return monkeypatch.undo


def test_a_full_disk_holds_at_most_the_bound_and_says_how_many_it_dropped(tmp_path, full_disk, monkeypatch):
    cap = 1_000
    monkeypatch.setattr(record, "MAX_HELD_ROWS", cap)
    monkeypatch.setattr(scorelog, "MAX_HELD_ROWS", cap)
    settings = Settings(workdir=tmp_path)
    # the ScoreLog writes every 300 rows: its failed writes are bounded too
    deferred = DeferredScoreLog(
        ScoreLog(settings, "api-flood", flush_rows=300, flush_seconds=3600), every_seconds=3600
    )
    counted_before = dropped_total()
    answered, peak = 0, 0
    with Warnings("telcoml.serving", "telcoml.monitoring") as warnings:
        for request in range(4_000):  # /score one by one, and now and then a /score_batch of 50
            size = 50 if request % 100 == 0 else 1
            deferred.record(customers(answered, size), [ANSWER] * size, MODELS)
            answered += size
            peak = max(peak, deferred.held_rows)
            if request % 500 == 499:
                deferred._look()  # what the thread does every few seconds
                peak = max(peak, deferred.held_rows)
        deferred._look()
    assert answered == 5_960
    assert peak <= cap and deferred.held_rows == cap  # bounded: the oldest kept, the newest dropped
    drops = [m for m in warnings.messages if "dropped since the last look" in m]
    assert 1 <= len(drops) <= 9  # at most one line per look, never one per request
    said = sum(int(re.search(r"(\d+) newer ones dropped", m).group(1)) for m in drops)
    assert said == answered - cap
    assert "No space left on device" in drops[0]
    assert any("could not write" in m for m in warnings.messages)  # the ScoreLog's own attempt
    assert dropped_total() - counted_before == answered - cap
    assert not list(journal_dir(settings).glob("*.wal"))  # nothing half-written left behind

    full_disk()  # space again: what was held is written
    deferred.flush()
    rows = recorded(settings)
    assert len(rows) == cap and rows["customer_key"].is_unique
    assert "138****0000" in set(rows["msisdn_masked"])  # the first answered were kept,
    assert "138****5959" not in set(rows["msisdn_masked"])  # the last dropped


def test_a_kill_in_the_middle_of_a_write_loses_only_that_unanswered_request(tmp_path):
    settings = Settings(workdir=tmp_path)
    journal = ScoreJournal(settings, "api-torn")
    for first in range(0, 30, 3):
        journal.append(live_entry(customers(first, 3).columns, ["2026-06-30"] * 3, [ANSWER] * 3, MODELS), 3)
    segment = journal._path
    half = live_entry(customers(99).columns, ["2026-06-30"], [ANSWER], MODELS)
    with open(segment, "ab") as torn:  # the process died inside this write
        torn.write(half[: len(half) // 2])
    die(journal)
    assert recover_journal(settings) == 30
    rows = recorded(settings)
    assert len(rows) == 30 and "138****0099" not in set(rows["msisdn_masked"])
    assert not segment.exists()


def test_a_write_cut_short_by_a_full_disk_is_undone_and_the_customer_kept(tmp_path, monkeypatch):
    settings = Settings(workdir=tmp_path)
    deferred = DeferredScoreLog(ScoreLog(settings, "api-short", flush_seconds=3600), every_seconds=3600)
    deferred.record(customers(0), [ANSWER], MODELS)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:100]))
    deferred.record(customers(1), [ANSWER], MODELS)  # only 100 bytes reach the disk
    monkeypatch.undo()
    deferred.record(customers(2), [ANSWER], MODELS)
    (sealed,) = deferred.journal.sealed
    entries, torn = read_entries(sealed.read_bytes())
    assert len(entries) == 1 and torn == 0  # the partial entry was cut off the first segment
    deferred.flush()
    assert sorted(recorded(settings)["msisdn_masked"]) == ["138****0000", "138****0001", "138****0002"]


def test_recovery_takes_a_dead_writers_journal_and_leaves_a_running_ones(tmp_path):
    settings = Settings(workdir=tmp_path)
    running = DeferredScoreLog(ScoreLog(settings, "api-running", flush_seconds=3600), every_seconds=3600)
    assert running.recovered.wait(30)  # its own start-up recovery is done (nothing to recover)
    running.record(customers(0, 5), [ANSWER] * 5, MODELS)
    dead = ScoreJournal(settings, "api-dead")
    dead.append(live_entry(customers(100, 4).columns, ["2026-06-30"] * 4, [ANSWER] * 4, MODELS), 4)
    dead_segment = dead._path
    die(dead)

    directory = journal_dir(settings)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700  # whole numbers inside: owner only
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {0o600}
    assert recover_journal(settings) == 4
    assert not dead_segment.exists() and running.journal._path.exists()
    assert not (directory / f"{dead.writer}.lock").exists()
    rows = recorded(settings)
    assert len(rows) == 4 and set(rows["source"]) == {"api-dead"}

    converted = convert_segment(settings, running.journal._path)  # converting twice: same files
    assert convert_segment(settings, running.journal._path) == converted == 5
    running.flush()
    rows = recorded(settings)
    assert len(rows) == 9 and rows["customer_key"].is_unique
    assert not list(directory.glob("*.wal"))
    running.close()  # at exit: the lock file goes too
    assert not list(directory.iterdir())
    for path in (settings.workdir / "monitoring" / "scores").rglob("*.parquet"):
        assert b"13800000000" not in path.read_bytes()  # masked and keyed, never whole


def _kill_all(server) -> int:
    """SIGKILL the server and every process it started (BentoML's workers), at once."""
    root = psutil.Process(server.process.pid)
    processes = [root, *root.children(recursive=True)]
    for process in processes:
        os.kill(process.pid, signal.SIGKILL)
    server.process.wait(10)
    psutil.wait_procs(processes, timeout=10)
    return len(processes)


@pytest.mark.slow  # its own server on a copy of the trained world, part of it prepared (~1-2 min)
def test_every_answered_customer_is_recorded_after_a_sigkill_of_the_server(trained_world, keys, tmp_path):
    from serving.champions import load_champions
    from serving.prepared import prepare_answers
    from tests.servers import Server

    workdir = tmp_path / "work"
    shutil.copytree(
        trained_world.settings.workdir,
        workdir,
        ignore=shutil.ignore_patterns("bentoml", "monitoring", "server-*.log", "crm_interface"),
    )
    settings = Settings(workdir=workdir)
    prepare_answers(settings, load_champions(settings), ["GD"])  # GD answered prepared, HE live
    latest = trained_world.labels[trained_world.labels["month"] == trained_world.months[-1]]
    singles = latest.groupby("province").head(60)["msisdn"].tolist()
    batch = latest[~latest["msisdn"].isin(singles)]["msisdn"].head(600).tolist()

    # nothing is flushed on time: whatever is recorded comes from the journal
    server = Server(workdir, env={"TELCOML_RECORD_FLUSH_SECONDS": "600"})
    answered: list[str] = []
    paths: set[str] = set()
    try:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": keys["group"]}, timeout=60) as client:
            for msisdn in singles:
                r = client.post("/score", json={"msisdn": msisdn, "reasons": "none"})
                assert r.status_code == 200, r.text
                answered.append(msisdn)
                paths.add(r.json()["answered_from"])
            for start in range(0, len(batch), 200):
                r = client.post(
                    "/score_batch", json={"msisdns": batch[start : start + 200], "reasons": "none"}
                )
                assert r.status_code == 200, r.text
                answered += [x["msisdn"] for x in r.json()["results"] if x["status"] == 200]
        assert paths == {"prepared", "live"}
        # a running server's journal is its own: recovery leaves it alone
        assert recover_journal(settings) == 0
        killed = _kill_all(server)
    finally:
        server.stop()
    assert killed >= 2  # the server and its worker
    assert len(answered) >= 700
    segments = list(journal_dir(settings).glob("*.wal"))
    assert segments and recorded(settings).empty

    started = time.perf_counter()
    recovered = recover_journal(settings)  # what the next server's start and the weekly job run
    seconds = time.perf_counter() - started
    rows = recorded(settings)
    lost = set(customer_keys(settings, answered).tolist()) - set(rows["customer_key"].tolist())
    assert recovered == len(answered) and not lost, f"{len(lost)} of {len(answered)} answered customers lost"
    assert len(rows) == len(answered) and rows["source"].str.startswith("api-").all()
    assert not list(journal_dir(settings).glob("*.wal"))
    assert seconds < 30
    for path in (workdir / "monitoring" / "scores").rglob("*.parquet"):
        data = path.read_bytes()
        assert not any(m.encode() in data for m in answered[:20])
