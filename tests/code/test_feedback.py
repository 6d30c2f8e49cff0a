"""Feedback events from the CRM: validation, the store's idempotence, file ingest."""

import json
import os

import pytest
import sqlalchemy as sa

from features.feedback import (
    EVENTS,
    FeedbackError,
    FeedbackStore,
    ingest_feedback_files,
    parse_events,
)

PG_URL = os.environ.get("TELCOML_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def contact(event_id="c-1", **over):
    event = {
        "type": "campaign_contact",
        "event_id": event_id,
        "time": "2026-04-03T10:00:00+08:00",
        "campaign_id": "roam-sc-cq",
        "wave": 1,
        "msisdn": "13812345678",
        "channel": "outbound",
        "outcome": "accepted",
    }
    return {**event, **over}


def listing(event_id="l-1", **over):
    event = {
        "type": "list_change",
        "event_id": event_id,
        "time": "2026-04-05T09:00:00",
        "msisdn": "13912345678",
        "list_type": "black",
        "action": "add",
    }
    return {**event, **over}


@pytest.fixture
def store(tmp_path):
    return FeedbackStore(f"sqlite:///{tmp_path / 'feedback.db'}")


def count(store):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar_one()


def test_the_same_event_twice_is_stored_once_and_answered_duplicate(store):
    events = parse_events([contact(), listing()], scope="GD")
    assert store.add(events) == ["stored", "stored"]
    assert store.add(parse_events([contact(), listing("l-2")], scope="GD")) == ["duplicate", "stored"]
    assert count(store) == 3
    # the same id with other content is a conflict: not stored, the first kept
    assert store.add(parse_events([contact(outcome="declined")], scope="GD")) == ["conflict"]
    assert count(store) == 3 and store.pending()[0].outcome == "accepted"
    # a time with an offset is kept as naive UTC, as the raw tables hold it
    assert str(events[0].time) == "2026-04-03 02:00:00" and events[0].province == "GD"
    status = {(s["event_type"], s["province"]): s for s in store.status()}
    assert status[("list_change", "GD")]["events"] == 2 and status[("list_change", "GD")]["pending"] == 2


@pytest.mark.parametrize(
    "bad,field",
    [
        (contact("c-2", msisdn="1381234567"), "msisdn"),
        (contact("c-2", channel="carrier_pigeon"), "channel"),
        (contact("c-2", wave=0), "wave"),
        (contact("c-2", wave="1"), "wave"),  # strict: a number is a JSON number
        (listing("l-2", reason="x" * 201), "reason"),
        (contact("c-2", note="extra"), "note"),
        ({**contact("c-2"), "type": "gossip"}, "type"),
    ],
)
def test_a_bad_event_names_index_and_field_and_nothing_of_the_batch_is_stored(store, bad, field):
    with pytest.raises(FeedbackError) as err:
        store.add(parse_events([contact(), bad], scope="GD"))
    assert err.value.field == field and "event 1" in str(err.value) and field in str(err.value)
    assert "13812345678" not in str(err.value)
    assert count(store) == 0


def test_a_province_key_may_send_only_its_own_province(store):
    with pytest.raises(FeedbackError) as err:
        parse_events([contact(province="GD"), listing(province="SC")], scope="GD")
    assert err.value.forbidden and "event 1" in str(err.value)
    with pytest.raises(FeedbackError, match="province"):
        parse_events([contact()], scope="*")  # a group key must name the province
    assert parse_events([contact(province="SC")], scope="*")[0].province == "SC"


def test_file_ingest_good_file_then_a_bad_line_stores_nothing_of_that_file(tmp_path, store):
    good = tmp_path / "crm-20260405.csv"
    good.write_text(
        "type,event_id,province,time,campaign_id,wave,msisdn,channel,outcome,list_type,action\n"
        "campaign_contact,c-1,GD,2026-04-03T10:00:00,roam,2,13812345678,outbound,declined,,\n"
        "list_change,l-1,GD,2026-04-05T09:00:00,,,13912345678,,,black,add\n"
    )
    bad = tmp_path / "crm-20260406.jsonl"
    bad.write_text(
        '{"type": "list_change", "event_id": "l-9", "province": "GD", "time": "2026-04-06T09:00:00",'
        ' "msisdn": "13912345678", "list_type": "red", "action": "add"}\n'
        "\n"
        '{"type": "list_change", "event_id": "l-10", "province": "GD", "time": "2026-04-06T09:00:00",'
        ' "msisdn": "13912345678", "list_type": "grey", "action": "add"}\n'
    )
    url = str(store.engine.url)
    assert ingest_feedback_files(url, [good]) == [
        {"file": str(good), "stored": 2, "duplicate": 0, "conflict": 0}
    ]
    with pytest.raises(FeedbackError) as err:
        ingest_feedback_files(url, [good, bad])
    assert f"{bad}, line 3" in str(err.value) and err.value.field == "list_type"
    assert count(store) == 2  # the good file again: duplicates; the bad file: nothing


@pytest.mark.postgres
def test_postgres_store_keeps_events_once():
    store = FeedbackStore(PG_URL)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.event_id.like("pgtest-%")))
    events = parse_events([contact("pgtest-1"), listing("pgtest-2")], scope="GD")
    assert store.add(events) == ["stored", "stored"]
    assert store.add(events) == ["duplicate", "duplicate"]
    with pytest.raises(FeedbackError):
        store.add(parse_events([contact("pgtest-3"), contact("pgtest-4", msisdn="1")], scope="GD"))
    with store.engine.begin() as conn:
        ids = conn.execute(sa.select(EVENTS.c.event_id).where(EVENTS.c.event_id.like("pgtest-%"))).scalars()
        assert sorted(ids) == ["pgtest-1", "pgtest-2"]
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.event_id.like("pgtest-%")))


def test_cli_ingests_reports_and_applies(tmp_path):
    from typer.testing import CliRunner

    from telcoml.cli import app

    runner, work = CliRunner(), ["--workdir", str(tmp_path / "work")]

    def run(*args):
        r = runner.invoke(app, [*args, *work])
        return r.exit_code, " ".join(r.output.split())  # as read, however rich wrapped it

    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(contact(province="GD")) + "\n" + json.dumps(listing(province="GD")) + "\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "type,event_id,province,time,msisdn,list_type,action\nlist_change,l-5,GD,2026-04-05,139,red,add\n"
    )
    assert run("feedback", "ingest", str(good)) == (0, f"{good}: 2 stored, 0 duplicate")
    code, out = run("feedback", "ingest", str(bad))
    assert code == 1 and f"{bad}, line 2, field 'msisdn'" in out
    code, out = run("feedback", "status")
    assert code == 0 and "campaign_contact" in out and "list_change" in out
    code, out = run("feedback", "apply")  # no warehouse yet: everything waits
    assert code == 0 and "0 event(s) applied" in out and "2 wait" in out
