"""`telcoml retention` on the trained world: the list, the counts, the cut-off serving reads, the
health report beside the weekly ones, and the retention advice of the answers that follow."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.settings import Settings
from core.tasks import CHURN_BANDS
from serving.answers import score_frame
from serving.champions import load_champions
from serving.retention import read_cutoff
from serving.retention_list import snapshot
from telcoml.cli import app

runner = CliRunner()
HIGH_BAND = CHURN_BANDS[-1][0]


@pytest.fixture(scope="module")
def retention_world(trained_world, tmp_path_factory):
    """A copy of the trained world (its cut-off must not reach the shared server's answers), with
    GD's retention list written by the command."""
    workdir = tmp_path_factory.mktemp("retention") / "work"
    shutil.copytree(trained_world.settings.workdir, workdir)
    result = runner.invoke(app, ["retention", "--province", "GD", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    return Settings(workdir=workdir), " ".join(result.output.split()), trained_world.months


def test_the_command_writes_the_list_the_cut_off_and_the_health_report(retention_world):
    settings, output, months = retention_world
    latest = months[-1]
    listed = pd.read_parquet(settings.workdir / "retention" / f"retention_GD_{latest}.parquet")
    csv = pd.read_csv(settings.workdir / "retention" / f"retention_GD_{latest}.csv", dtype={"msisdn": str})
    assert len(listed) == len(csv) and listed["msisdn"].str.fullmatch(r"\d{11}").all()
    for column in ("core", "churn_probability", "rules_fired", "composite_index", "reason_en", "reason_zh"):
        assert column in listed
    cutoff = read_cutoff(settings.workdir, "GD")
    on_list = listed[listed["on_list"]]
    # the capacity: 5% of the core customers, the riskiest, all core
    assert len(on_list) == max(1, int(0.05 * cutoff.core_customers + 1e-9)) == cutoff.list_size
    assert on_list["core"].all() and (on_list["churn_probability"] >= round(cutoff.cutoff, 6)).all()
    assert on_list["list_rank"].tolist() == list(range(1, len(on_list) + 1))
    assert f"{cutoff.core_customers:,} core" in output and f"{len(on_list):,} on the list" in output
    assert "by thresholds" in output and "by the composite index" in output
    report = settings.workdir / "monitoring" / "reports" / "retention" / "GD"
    health = json.loads(next(report.glob("*.json")).read_text())
    assert health["list_month"] < latest and health["after_month"] <= latest
    groups = {g["group"]: g for g in health["groups"]}
    assert set(groups) == {"on_list", "threshold_warned", "composite_warned", "core_not_warned"}
    assert (
        0 <= groups["on_list"]["retained_share"] <= 1
        and "保有后健康度" in next(report.glob("*.md")).read_text()
    )


def test_the_answers_give_the_retention_advice_to_the_list_not_at_the_fixed_band(retention_world):
    settings, _, months = retention_world
    models = load_champions(settings).for_province("GD")
    assert models.retention is not None and models.retention.month == months[-1]
    frame = snapshot(settings, "GD", months[-1])
    listed = pd.read_parquet(settings.workdir / "retention" / f"retention_GD_{months[-1]}.parquet")
    on_list = set(listed.loc[listed["on_list"], "msisdn"])
    p = models.probabilities(frame)["churn"]
    high_off_list = ~frame["msisdn"].isin(on_list).to_numpy() & (p >= HIGH_BAND)
    chosen = frame[frame["msisdn"].isin(on_list).to_numpy() | high_off_list].reset_index(drop=True)
    assert high_off_list.any(), "the trained world has high-band customers off the list"
    answers = score_frame(models, chosen, reason_tasks=())
    advised = np.array(["retention" in [g["topic"] for g in a["guidance"]] for a in answers])
    expected = chosen["msisdn"].isin(on_list).to_numpy()
    assert (advised == expected).all()
    assert all(a["churn"]["retention"] == e for a, e in zip(answers, expected))


def test_the_crm_file_says_who_is_on_the_retention_list(retention_world, tmp_path):
    from serving.batch import score_province

    settings, _, months = retention_world
    models = load_champions(settings)
    listed = pd.read_parquet(settings.workdir / "retention" / f"retention_GD_{months[-1]}.parquet")
    on_list = set(listed.loc[listed["on_list"], "msisdn"])
    gd = pd.read_parquet(score_province(settings, models, "GD", output_dir=tmp_path, record=False).parquet)
    assert set(gd.loc[gd["retention_listed"].fillna(False), "msisdn"]) == on_list
    he = pd.read_parquet(score_province(settings, models, "HE", output_dir=tmp_path, record=False).parquet)
    assert he["retention_listed"].isna().all()  # no list computed for HE: the column stays empty
