"""Prepared answers over HTTP: the same answer as live scoring, served only while current."""

from __future__ import annotations

import shutil
import time
from datetime import UTC

import httpx
import pytest

from core.settings import Settings
from serving.champions import load_champions
from serving.prepared import generation, prepare_answers
from tests.servers import Server, schemathesis_errors

# slow: its own server on a copy of the trained world, every answer prepared (~90 s); CI runs it
pytestmark = pytest.mark.slow

VOLATILE = ("answered_from", "prepared_at")


@pytest.fixture(scope="module")
def world_copy(trained_world, keys, tmp_path_factory):
    """A copy of the trained world (keys included): preparing answers there leaves other tests'
    server alone."""
    workdir = tmp_path_factory.mktemp("prepared") / "work"
    shutil.copytree(
        trained_world.settings.workdir,
        workdir,
        ignore=shutil.ignore_patterns("bentoml", "monitoring", "server-*.log", "crm_interface"),
    )
    return Settings(workdir=workdir)


@pytest.fixture(scope="module")
def prepared_server(world_copy):
    srv = Server(
        world_copy.workdir, env={"TELCOML_PREPARED_CHECK_SECONDS": "0.5", "TELCOML_RECORD_FLUSH_SECONDS": "1"}
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def live_answers(prepared_server, keys, customers):
    """Answers before anything is prepared: scored live."""
    return {m: score(prepared_server, m, keys["group"]) for m in (customers["GD"], customers["HE"])}


@pytest.fixture(scope="module")
def prepared(prepared_server, world_copy, live_answers):
    """Every customer's answer prepared, once for the module (after the live answers were taken)."""
    return prepare_answers(world_copy, load_champions(world_copy))


def score(server, msisdn, key, **extra):
    r = httpx.post(
        f"{server.url}/score", json={"msisdn": msisdn, **extra}, headers={"X-API-Key": key}, timeout=30
    )
    return r.status_code, r.json()


def wait_for(server, msisdn, key, source, seconds=15.0):
    deadline = time.monotonic() + seconds
    while True:
        status, body = score(server, msisdn, key)
        if body.get("answered_from") == source or time.monotonic() > deadline:
            return status, body
        time.sleep(0.2)


def without(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in VOLATILE}


def test_prepared_answer_is_exactly_the_live_answer(prepared_server, live_answers, prepared, keys, customers):
    gd, he = customers["GD"], customers["HE"]
    live = live_answers
    assert all(status == 200 and body["answered_from"] == "live" for status, body in live.values())
    assert set(prepared.provinces) == {"GD", "HE"} and prepared.answers > 2500  # every current customer

    for m in (gd, he):
        status, body = score(prepared_server, m, keys["group"])
        assert status == 200 and body["answered_from"] == "prepared", body
        assert without(body) == without(live[m][1])  # grade, scores, reasons, guidance, versions: all equal
        assert body["credit_grade"]["reasons"] and body["prepared_at"]


def test_reasons_option_and_province_scope_apply_to_prepared_answers(
    prepared_server, prepared, keys, customers
):
    status, body = wait_for(prepared_server, customers["GD"], keys["group"], "prepared")
    assert body["answered_from"] == "prepared"
    status, trimmed = score(prepared_server, customers["GD"], keys["GD"], reasons="credit_grade")
    assert status == 200 and trimmed["answered_from"] == "prepared"
    assert trimmed["credit_grade"]["reasons"] and trimmed["churn"]["reasons"] == []
    status, refused = score(prepared_server, customers["GD"], keys["HE"])
    assert status == 404 and refused["error"] == "unknown_customer"  # like a number that is no one's
    assert customers["GD"] not in refused["message"]  # masked


def test_metrics_count_answers_by_path(prepared_server, prepared, keys, customers):
    wait_for(prepared_server, customers["GD"], keys["group"], "prepared")
    metrics = httpx.get(f"{prepared_server.url}/metrics", timeout=30).text
    counts = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("telcoml_answers_total{")
    }
    assert counts.get("prepared", 0) >= 1 and counts.get("live", 0) >= 1, counts


def test_batch_serves_prepared_live_and_bad_items_together(prepared_server, prepared, keys, customers):
    wait_for(prepared_server, customers["GD"], keys["group"], "prepared")
    r = httpx.post(
        f"{prepared_server.url}/score_batch",
        headers={"X-API-Key": keys["GD"]},
        timeout=30,
        json={"msisdns": [customers["GD"], customers["HE"], "19999999999", "123"]},
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 404, 404, 422]
    assert results[0]["answered_from"] == "prepared" and results[0]["msisdn"] == customers["GD"]


def test_prepared_calls_are_recorded_for_monitoring(prepared_server, prepared, world_copy, keys, customers):
    from datetime import datetime

    from monitoring.record import iso_week, read_week

    wait_for(prepared_server, customers["GD"], keys["group"], "prepared")
    deadline = time.monotonic() + 30
    frame = None
    while time.monotonic() < deadline:
        try:
            frame = read_week(world_copy, iso_week(datetime.now(UTC)))
        except Exception:
            frame = None
        if (
            frame is not None
            and len(frame)
            and frame["pred_credit_grade"].notna().all()
            and (frame["msisdn_masked"] == customers["GD"][:3] + "****" + customers["GD"][-4:]).sum() >= 2
        ):
            break
        time.sleep(1)
    assert frame is not None and len(frame), "no monitoring records written"
    assert (
        frame["monthly_consumption"].notna().any()
        and frame["model_credit_grade"].str.startswith("models:/").all()
    )


def test_schemathesis_finds_no_server_errors_on_prepared_answers(prepared_server, prepared, keys, customers):
    assert (
        wait_for(prepared_server, customers["GD"], keys["group"], "prepared")[1]["answered_from"]
        == "prepared"
    )
    errors = schemathesis_errors(prepared_server.url, keys["group"])
    assert errors is None, errors


def test_preparing_before_materializing_says_what_to_run(tiny_world, tmp_path):
    from typer.testing import CliRunner

    from telcoml.cli import app

    workdir = tmp_path / "empty-online"
    shutil.copytree(tiny_world.settings.workdir, workdir, ignore=shutil.ignore_patterns("online_store.db"))
    s = Settings(workdir=workdir)
    from serving.champions import ModelSet

    with pytest.raises(Exception, match="run `telcoml materialize` first"):
        prepare_answers(s, ModelSet({}, {}), ["GD"])
    result = CliRunner().invoke(app, ["prepare", "--workdir", str(workdir)])
    assert result.exit_code == 1 and "Traceback" not in result.output  # no champion here: one clear line


def test_generation_changes_with_what_an_answer_depends_on(trained_world):
    models = load_champions(trained_world.settings)
    gd = models.for_province("GD")
    base = generation("w1", gd, "c1")
    assert base == generation("w1", gd, "c1")
    assert base != generation("w2", gd, "c1")  # another materialization
    assert base != generation("w1", gd, "c2")  # another release of the answer's code
    other = type(gd)(gd.models, gd.versions, names={**gd.names, "churn": "models:/telcoml-churn/99"})
    assert base != generation("w1", other, "c1")  # another champion


def test_a_new_materialization_sends_calls_live_until_prepared_again(
    prepared_server, prepared, world_copy, trained_world, keys, customers
):
    from features.store import apply_repository, materialize_latest

    gd = customers["GD"]
    assert wait_for(prepared_server, gd, keys["group"], "prepared")[1]["answered_from"] == "prepared"
    materialize_latest(apply_repository(world_copy), trained_world.months[-1])  # same month, loaded again
    status, body = wait_for(prepared_server, gd, keys["group"], "live")
    assert status == 200 and body["answered_from"] == "live"  # the old generation is no longer served

    from typer.testing import CliRunner

    from telcoml.cli import app

    done = CliRunner().invoke(app, ["prepare", "--province", "GD", "--workdir", str(world_copy.workdir)])
    assert done.exit_code == 0 and "answers prepared for GD" in " ".join(done.output.split()), done.output
    assert wait_for(prepared_server, gd, keys["group"], "prepared")[1]["answered_from"] == "prepared"
    status, he = score(prepared_server, customers["HE"], keys["group"])
    assert status == 200 and he["answered_from"] == "live"  # HE was not prepared again
