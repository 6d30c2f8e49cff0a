"""Batch scoring of a province into the CRM interface file: complete, consistent, atomic."""

import pandas as pd
import pytest

from core.errors import TelcomlError
from serving.answers import score_frame
from serving.batch import score_province
from serving.champions import load_champions
from serving.online import OnlineFeatures


@pytest.fixture(scope="module")
def champions(trained_world):
    return load_champions(trained_world.settings)


def test_every_customer_of_the_province_in_parquet_and_csv(trained_world, champions, tmp_path):
    chunks = []
    result = score_province(
        trained_world.settings, champions, "GD", chunk_rows=300, output_dir=tmp_path, progress=chunks.append
    )
    labels = trained_world.labels
    expected = labels.loc[
        (labels["province"] == "GD") & (labels["month"] == trained_world.months[-1]), "msisdn"
    ]
    frame = pd.read_parquet(result.parquet)
    assert result.rows == len(frame) == len(expected) and len(chunks) > 1
    assert set(frame["msisdn"]) == set(expected) and (frame["province"] == "GD").all()
    csv = pd.read_csv(result.csv, dtype={"msisdn": str})
    assert csv["msisdn"].tolist() == frame["msisdn"].tolist()
    assert frame["credit_grade"].between(1, 5).all() and frame["churn_probability"].between(0, 1).all()
    assert frame["model_versions"].iloc[0].startswith("credit_grade=")
    # sensible precision: scores at one decimal with no float32 noise (80.8, not 80.80000305175781),
    # in the file and its CSV; churn probabilities fine enough to rank a low-risk base
    for column in ("tariff_sensitivity", "complaint_sensitivity"):
        assert (frame[column] == frame[column].round(1)).all()
        assert csv[column].astype(str).str.fullmatch(r"\d+(\.\d)?").all(), csv[column].head()
    churn = frame["churn_probability"]
    assert (churn == churn.round(6)).all() and churn.nunique() > churn.round(4).nunique()
    # the same answers the online endpoint gives (offline and online indicators agree)
    sample = frame.head(20)
    online = OnlineFeatures(trained_world.settings).fetch(sample["msisdn"].tolist())
    answers = score_frame(champions, online)
    assert [a["credit_grade"]["code"] for a in answers] == sample["credit_grade"].tolist()
    assert [a["channel_preference"]["best_channel"] for a in answers] == sample["best_channel"].tolist()


def test_a_failed_run_leaves_the_previous_file_intact(trained_world, champions, tmp_path, monkeypatch):
    good = score_province(trained_world.settings, champions, "HE", chunk_rows=500, output_dir=tmp_path)
    before = good.parquet.read_bytes(), good.csv.read_bytes()
    import serving.batch as batch

    calls = {"n": 0}
    original = batch.interface_rows

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise TelcomlError("scoring failed half way")
        return original(*args, **kwargs)

    monkeypatch.setattr(batch, "interface_rows", failing)
    with pytest.raises(TelcomlError, match="half way"):
        score_province(trained_world.settings, champions, "HE", chunk_rows=200, output_dir=tmp_path)
    assert (good.parquet.read_bytes(), good.csv.read_bytes()) == before
    # no temporary left behind (the province's lock file stays: a lock is never removed)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".HE.scoring.lock"]


def test_a_killed_runs_half_written_files_are_removed_by_the_next_run(trained_world, champions, tmp_path):
    """A run killed (``kill -9``) while its CRM files grow leaves hidden temporaries beside them;
    the next run of any province into that folder removes them once their writer is gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, pyarrow as pa; from pathlib import Path; from core.io import AtomicTableFiles\n"
            "files = AtomicTableFiles(); table = pa.table({'msisdn': ['13800000000']})\n"
            f"for name in ('crm_HE_x.parquet', 'crm_HE_x.csv'):\n"
            f"    files.write(table, Path({str(tmp_path)!r}) / name)\n"
            "print('writing', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 2 and not list(tmp_path.glob("crm_HE_x.*"))
    a_while_ago = time.time() - 120  # untouched for longer than a dead writer's grace minute
    for path in left:
        os.utime(path, (a_while_ago, a_while_ago))
    result = score_province(trained_world.settings, champions, "HE", output_dir=tmp_path, record=False)
    assert result.rows and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_second_run_of_a_province_is_refused_while_one_writes(trained_world, champions, tmp_path):
    """Another process scoring HE into the same folder holds its lock: this run is refused at
    once and HE's file is left as it was; GD is scored meanwhile; once that process is killed,
    HE can be scored again (the kernel drops a killed holder's lock: nothing stale to clean)."""
    import subprocess
    import sys

    good = score_province(trained_world.settings, champions, "HE", output_dir=tmp_path, record=False)
    before = good.parquet.read_bytes(), good.csv.read_bytes()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from serving.batch import scoring_lock\n"
            f"with scoring_lock(Path({str(tmp_path)!r}), 'HE'):\n"
            "    print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TelcomlError, match=r"another batch scoring of HE is writing its CRM file"):
            score_province(trained_world.settings, champions, "he", output_dir=tmp_path, record=False)
        assert (good.parquet.read_bytes(), good.csv.read_bytes()) == before
        assert score_province(trained_world.settings, champions, "GD", output_dir=tmp_path, record=False).rows
    finally:
        holder.kill()
        holder.wait()
    again = score_province(trained_world.settings, champions, "HE", output_dir=tmp_path, record=False)
    assert again.rows == good.rows


def test_a_province_with_some_models_only_gets_the_same_columns_with_the_rest_empty(
    trained_world, champions, tmp_path
):
    from monitoring.record import read_week
    from serving.batch import interface_schema
    from serving.champions import ModelSet

    # e.g. a province whose own data labels credit grades and churn only
    partial = ModelSet(
        {k: champions.models[k] for k in ("credit_grade", "churn")},
        {k: champions.versions[k] for k in ("credit_grade", "churn")},
        names={k: champions.names[k] for k in ("credit_grade", "churn")},
    )
    result = score_province(
        trained_world.settings, partial, "GD", output_dir=tmp_path, record_week="2026-W02"
    )
    frame = pd.read_parquet(result.parquet)
    assert list(frame.columns) == interface_schema().names
    assert frame["credit_grade"].between(1, 5).all() and frame["churn_probability"].notna().all()
    assert frame[["tariff_sensitivity", "best_channel", "channel_ranking"]].isna().all().all()
    recorded = read_week(trained_world.settings, "2026-W02", "GD")
    assert len(recorded) == len(frame) and recorded["pred_channel_preference"].isna().all()
    assert recorded["pred_credit_grade"].tolist() == frame["credit_grade"].tolist()


def test_the_black_list_caps_the_grade_wherever_it_is_decided(trained_world, champions):
    """The file, the answers and the monitoring records agree on the capped grade; the rule is
    named in the answer's reasons; the file's handling columns are the answer's guidance values."""
    import numpy as np

    from core.guidance import TOPICS
    from core.tasks import TASKS
    from monitoring.record import predictions_from_answers, predictions_from_interface
    from serving.batch import interface_rows, latest_month_for, snapshot_chunks

    s = trained_world.settings
    models = champions.for_province("GD")
    month = latest_month_for(s, "GD")
    # black-listed customers the model itself grades above 2 (the flag is one of its indicators)
    chunk = next(snapshot_chunks(s, "GD", month, 2000)).assign(black_list_flag=1)
    modelled = TASKS["credit_grade"].kind.modelled(models.probabilities(chunk)["credit_grade"], models.config)
    above, below = np.flatnonzero(modelled > 2)[:5], np.flatnonzero(modelled <= 2)[:3]
    assert len(above)
    rows = chunk.iloc[np.r_[above, below]].reset_index(drop=True)
    modelled = modelled[np.r_[above, below]]
    above, below = np.arange(len(above)), np.arange(len(above), len(rows))
    table = interface_rows(models, rows, month, "2026-11-01T00:00:00+00:00")
    written = table.to_pandas()
    answers = score_frame(models, rows)
    grades = [2] * len(above) + modelled[below].tolist()
    assert written["credit_grade"].tolist() == grades
    assert [a["credit_grade"]["code"] for a in answers] == grades
    for a, capped in zip(answers, [True] * len(above) + [False] * len(below)):
        rules = [r["code"] for r in a["credit_grade"]["reasons"] if r.get("rule")]
        assert rules == (["credit_grade:rule:black_list"] if capped else [])
        if capped:
            assert a["credit_grade"]["reasons"][0]["code"] == "credit_grade:rule:black_list"
    assert predictions_from_answers(answers)["pred_credit_grade"].tolist() == grades
    assert predictions_from_interface(table)["pred_credit_grade"].tolist() == grades
    for a, (_, row) in zip(answers, written.iterrows()):
        values = {g["topic"]: g.get("value") for g in a["guidance"]}
        assert {t.crm_column: row[t.crm_column] for t in TOPICS.values()} == {
            t.crm_column: values[name] for name, t in TOPICS.items()
        }


def test_batch_score_without_a_province_scores_each_one_in_one_run(trained_world, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from telcoml.cli import app

    workdir = tmp_path / "work"  # a copy: the run records its customers for monitoring
    shutil.copytree(trained_world.settings.workdir, workdir)
    month = trained_world.months[-1]
    provinces = sorted(trained_world.labels.loc[trained_world.labels["month"] == month, "province"].unique())
    run = CliRunner().invoke(app, ["batch-score", "--workdir", str(workdir)])
    assert run.exit_code == 0, run.output
    written = sorted(p.name for p in (workdir / "crm_interface").glob("crm_*.parquet"))
    assert len(provinces) > 1 and written == [f"crm_{p}_{month}.parquet" for p in provinces]
    for p in provinces:
        assert f"customers of {p} ({month})" in run.output
    # a month without snapshots is answered clearly
    none = CliRunner().invoke(app, ["batch-score", "--month", "1999-01", "--workdir", str(workdir)])
    assert none.exit_code != 0 and "no indicator snapshot of 1999-01" in none.output
