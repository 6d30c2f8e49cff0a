"""Stored feedback reaches the raw tables through the gate, and the next snapshot sees it."""

import shutil

import pandas as pd
import pytest

from core.errors import DataQualityError
from core.settings import Settings
from features.build import build_indicators
from features.feedback import FeedbackStore, parse_events
from features.feedback_apply import apply_feedback
from features.schemas import partition_path


@pytest.fixture
def world(tiny_world, tmp_path):
    """A copy of the tiny world's raw tables, a GD customer active in the last month, that month."""
    settings = Settings(workdir=tmp_path / "work")
    shutil.copytree(tiny_world.settings.raw_dir, settings.raw_dir)
    month = tiny_world.months[-1]
    subs = pd.read_parquet(partition_path(settings.raw_dir, "subscribers", "GD"))
    old_enough = pd.to_datetime(subs["activation_date"]) < "2025-01-01"
    customer = subs.loc[(subs["status"] == "active") & old_enough, "msisdn"]
    return settings, month, str(customer.iloc[0])


def snapshot(settings, month, msisdn):
    build_indicators(settings.raw_dir, settings.workdir / "offline", ["GD"], [month])
    parts = [pd.read_parquet(f) for f in sorted((settings.workdir / "offline").glob(f"*/GD_{month}.parquet"))]
    row = pd.concat([p.set_index("msisdn") for p in parts], axis=1)
    return row.loc[msisdn]


def events(msisdn, month, **over):
    common = {"province": "GD", "msisdn": msisdn, "time": f"{month}-10T10:00:00"}
    return [
        {"type": "campaign_contact", "event_id": "c-1", "campaign_id": "roam", "wave": 1}
        | {"channel": "outbound", "outcome": "accepted"}
        | common,
        {"type": "campaign_contact", "event_id": "c-2", "campaign_id": "roam", "wave": 2}
        | {"channel": "outbound", "outcome": "declined", "time": f"{month}-12T10:00:00"}
        | {k: v for k, v in common.items() if k != "time"},
        {"type": "list_change", "event_id": "l-1", "list_type": "black", "action": "add"} | common,
        {"type": "complaint_outcome", "event_id": "w-1", "work_order_id": "WO-1", "verified": "unfounded"}
        | {"handling_hours": 5, "gift_amount": 20}
        | common,
        {"type": "do_not_disturb", "event_id": "d-1", "until": "2027-01-01"} | common,
    ]


def test_feedback_reaches_the_raw_tables_and_the_next_snapshot(world):
    settings, month, msisdn = world
    before = snapshot(settings, month, msisdn)
    store = FeedbackStore(settings.feedback_store)
    store.add(parse_events(events(msisdn, month)))

    done = apply_feedback(settings)
    assert done.applied == 5 and done.waiting == 0
    assert done.rows == {
        "channel_contacts": 2,
        "red_black_list": 1,
        "credit_events": 1,
        "small_gifts": 1,
        "do_not_disturb": 1,
    }
    after = snapshot(settings, month, msisdn)
    assert after["contacts_outbound_3m"] == before["contacts_outbound_3m"] + 2
    assert before["black_list_flag"] == 0 and after["black_list_flag"] == 1
    credit = pd.read_parquet(partition_path(settings.raw_dir, "credit_events", "GD", month))
    mine = credit[credit["event_id"] == "FB-w-1"]
    assert list(mine["event_type"]) == ["complaint_unfounded"] and list(mine["msisdn"]) == [msisdn]
    dnd = pd.read_parquet(partition_path(settings.raw_dir, "do_not_disturb", "GD"))
    assert list(dnd["msisdn"]) == [msisdn]

    # applying again adds nothing; the same events sent again are duplicates, not new rows
    contacts = len(pd.read_parquet(partition_path(settings.raw_dir, "channel_contacts", "GD", month)))
    assert store.add(parse_events(events(msisdn, month))) == ["duplicate"] * 5
    assert apply_feedback(settings).applied == 0
    store.mark_applied([])  # nothing pending: a crash after the writes re-applies the same keys
    assert len(pd.read_parquet(partition_path(settings.raw_dir, "channel_contacts", "GD", month))) == contacts

    # a removal flips the flag back
    removal = {"type": "list_change", "event_id": "l-2", "list_type": "black", "action": "remove"}
    store.add(parse_events([removal | {"province": "GD", "msisdn": msisdn, "time": f"{month}-20T10:00:00"}]))
    assert apply_feedback(settings).applied == 1
    assert snapshot(settings, month, msisdn)["black_list_flag"] == 0


def test_events_of_a_month_not_delivered_yet_wait(world):
    settings, month, msisdn = world
    later = str(pd.Period(month, "M") + 2)
    store = FeedbackStore(settings.feedback_store)
    store.add(parse_events(events(msisdn, later)[:2]))
    done = apply_feedback(settings)
    assert done.waiting == 2 and done.applied == 0
    assert not partition_path(settings.raw_dir, "channel_contacts", "GD", later).exists()


def test_a_row_the_gate_rejects_writes_nothing(world, monkeypatch):
    settings, month, msisdn = world
    path = partition_path(settings.raw_dir, "channel_contacts", "GD", month)
    before = path.read_bytes()
    store = FeedbackStore(settings.feedback_store)
    store.add(parse_events(events(msisdn, month)))
    # a contact the gate refuses (dated outside its partition's month), as a broken mapping would make
    import features.feedback_apply as applying

    real = applying.rows_of

    def misdated(event):
        rows = real(event)
        return [
            (t, {**r, "contact_time": pd.Timestamp("1999-01-01")} if t == "channel_contacts" else r, k)
            for t, r, k in rows
        ]

    monkeypatch.setattr(applying, "rows_of", misdated)
    with pytest.raises(DataQualityError, match="contact_time"):
        apply_feedback(settings)
    assert path.read_bytes() == before
    assert not partition_path(settings.raw_dir, "do_not_disturb", "GD").exists()
    assert len(store.pending()) == 5


def test_a_redelivered_month_keeps_the_feedback_applied_to_it(world, tiny_world, tmp_path):
    """`telcoml ingest` of a corrected month replaces its files: the feedback applied to the old
    ones is written into the new ones."""
    from telcoml.pipeline import ingest_stage

    settings, month, msisdn = world
    store = FeedbackStore(settings.feedback_store)
    taken = {"type": "offer_taken", "event_id": "t-1", "campaign_id": "roam", "province": "GD"}
    taken |= {"msisdn": msisdn, "time": f"{month}-11T09:00:00"}
    store.add(parse_events([*events(msisdn, month), taken]))
    assert apply_feedback(settings).applied == 6
    contacts = partition_path(settings.raw_dir, "channel_contacts", "GD", month)
    applied = pd.read_parquet(contacts)

    # the warehouse delivers the month again, as it was before any feedback
    delivered = partition_path(tmp_path / "delivery", "channel_contacts", "GD", month)
    delivered.parent.mkdir(parents=True)
    shutil.copy(partition_path(tiny_world.settings.raw_dir, "channel_contacts", "GD", month), delivered)
    assert len(pd.read_parquet(delivered)) == len(applied) - 2
    ingest_stage(settings, tmp_path / "delivery")
    after = pd.read_parquet(contacts)
    assert len(after) == len(applied)
    assert (after["msisdn"] == msisdn).sum() == (applied["msisdn"] == msisdn).sum()
    assert store.pending() == []


def test_two_applies_at_once_write_each_row_once(world):
    from concurrent.futures import ThreadPoolExecutor

    settings, month, msisdn = world
    FeedbackStore(settings.feedback_store).add(parse_events(events(msisdn, month)))
    before = len(pd.read_parquet(partition_path(settings.raw_dir, "channel_contacts", "GD", month)))
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda _: apply_feedback(settings), range(2)))
    assert sorted(d.applied for d in done) == [0, 5]
    after = pd.read_parquet(partition_path(settings.raw_dir, "channel_contacts", "GD", month))
    assert len(after) == before + 2
