"""The Feast store: point-in-time correctness, online/offline agreement, SQLite and Redis."""

import math
import uuid

import numpy as np
import pandas as pd
import pytest

from core import indicators as lib
from core.io import snapshot_time
from features.store import online_view, training_frame

CREDIT = [i.id for i in lib.for_task(lib.CREDIT_GRADE)]


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def test_point_in_time_join_never_reads_after_the_snapshot(tiny_world):
    store = tiny_world.store()
    first, second = tiny_world.months[1], tiny_world.months[2]
    customers = tiny_world.labels.query("month == @second")["msisdn"].head(50).tolist()
    # Ask for each customer at the first snapshot: values must be the first month's,
    # even though a later snapshot exists in the offline store.
    entity = pd.DataFrame({"msisdn": customers, "event_timestamp": snapshot_time(first)})
    frame = training_frame(store, entity, lib.CHURN).set_index("msisdn")
    offline = {}
    for subject in lib.SUBJECTS:
        files = [f for f in (tiny_world.settings.offline_dir / subject).glob("*.parquet")]
        offline[subject] = pd.concat([pd.read_parquet(f) for f in files])
    billing = offline["billing_payment"].set_index(["msisdn", "event_timestamp"])
    changed = 0
    for m in customers:
        want = billing.loc[(m, snapshot_time(first)), "monthly_consumption"]
        later = billing.loc[(m, snapshot_time(second)), "monthly_consumption"]
        assert frame.loc[m, "monthly_consumption"] == pytest.approx(want)
        changed += want != later
    assert changed >= 40  # bills move month to month, so taking the later one would show
    # A timestamp before any snapshot finds nothing: no future value leaks backwards.
    early = pd.DataFrame(
        {"msisdn": customers[:5], "event_timestamp": snapshot_time(first) - pd.Timedelta(days=45)}
    )
    before = training_frame(store, early, lib.CHURN)
    assert before["monthly_consumption"].isna().all()


def test_snapshot_between_months_takes_the_earlier_one(tiny_world):
    store = tiny_world.store()
    first = tiny_world.months[1]
    m = tiny_world.labels.query("month == @first")["msisdn"].iloc[0]
    mid = snapshot_time(first) + pd.Timedelta(days=10)  # inside the next month, before its snapshot
    got = training_frame(store, pd.DataFrame({"msisdn": [m], "event_timestamp": [mid]}), lib.CHURN)
    exact = training_frame(
        store, pd.DataFrame({"msisdn": [m], "event_timestamp": [snapshot_time(first)]}), lib.CHURN
    )
    cols = [c for c in got.columns if c not in ("msisdn", "event_timestamp")]
    assert all(_same(a, b) for a, b in zip(got[cols].iloc[0], exact[cols].iloc[0]))


def _online_offline_agree(world, online_store):
    latest = world.months[-1]
    customers = world.labels.query("month == @latest")["msisdn"].sample(40, random_state=1).tolist()
    online = online_view(online_store, customers, lib.CREDIT_GRADE).set_index("msisdn")
    entity = pd.DataFrame({"msisdn": customers, "event_timestamp": snapshot_time(latest)})
    offline = training_frame(world.store(), entity, lib.CREDIT_GRADE).set_index("msisdn")
    assert set(CREDIT) <= set(online.columns)
    mismatches = [
        (m, c, online.loc[m, c], offline.loc[m, c])
        for m in customers
        for c in CREDIT
        if not _same(online.loc[m, c], offline.loc[m, c])
    ]
    assert not mismatches, mismatches[:5]


def test_online_and_offline_values_agree_sqlite(tiny_world):
    _online_offline_agree(tiny_world, tiny_world.store())


def test_unknown_customer_has_no_online_values(tiny_world):
    frame = online_view(tiny_world.store(), ["19999999999"], lib.CHURN)
    assert frame.drop(columns=["msisdn"]).isna().all(axis=None)


def test_online_indicators_and_their_packing_follow_the_library_order(tiny_world):
    """Not Feast's order, which follows the string hash seed (PYTHONHASHSEED): the same customer's
    prepared indicators are the same bytes from every process."""
    from serving.online import OnlineFeatures
    from serving.prepared import packed_indicators, unpack

    labels = tiny_world.labels
    customers = labels.loc[labels["month"] == tiny_world.months[-1], "msisdn"].head(5).tolist()
    features = OnlineFeatures(tiny_world.settings).fetch(customers)
    library = ["msisdn", *lib.BY_ID]
    assert list(features.columns) == library
    assert [list(unpack(p)) for p in packed_indicators(features)] == [[*library, "features_as_of"]] * 5


def test_every_task_has_a_versioned_feature_service(tiny_world):
    store = tiny_world.store()
    names = {s.name for s in store.list_feature_services()}
    assert {f"{t}_v1" for t in lib.EVALUATIONS} <= names
    credit = store.get_feature_service("credit_grade_v1")
    refs = {f.name for proj in credit.feature_view_projections for f in proj.features}
    assert {i.id for i in lib.credit_indicators()} <= refs


def test_a_store_never_registered_asks_for_materialize_not_a_feast_trace(tmp_path):
    from core.errors import NotReadyError
    from core.settings import Settings
    from features.store import feature_service, open_store

    store = open_store(Settings(workdir=tmp_path))  # built indicators, `telcoml materialize` not run yet
    with pytest.raises(NotReadyError, match=r"no feature service churn_v1 .*`telcoml materialize`"):
        feature_service(store, "churn")


@pytest.mark.redis
def test_online_and_offline_values_agree_redis(tiny_world, redis_url, tmp_path):
    from core.settings import Settings
    from features.store import materialize_latest, open_store

    # its own registry (teardown removes it) over the same offline files
    (tmp_path / "offline").symlink_to(tiny_world.settings.offline_dir)
    settings = Settings(
        workdir=tmp_path, online_store="redis", redis_url=redis_url, project=f"t{uuid.uuid4().hex[:8]}"
    )
    store = open_store(settings)
    from features.repo import definitions

    store.apply(definitions(settings.offline_dir))
    materialize_latest(store, tiny_world.months[-1])
    try:
        _online_offline_agree(tiny_world, store)
    finally:
        store.teardown()


@pytest.mark.slow
def test_file_and_duckdb_offline_stores_agree(tiny_world):
    """The two offline stores Feast offers here give the same training frame."""
    from core.settings import Settings
    from features.store import open_store

    months = tiny_world.months
    entity = tiny_world.labels[tiny_world.labels["month"].isin(months[1:])][
        ["msisdn", "event_timestamp"]
    ].head(400)
    frames = []
    for offline in ("duckdb", "file"):
        settings = Settings(workdir=tiny_world.settings.workdir, offline_store=offline)
        frame = training_frame(open_store(settings), entity, lib.CHANNEL_PREFERENCE)
        frames.append(frame.sort_values(["msisdn", "event_timestamp"]).reset_index(drop=True))
    duck, dask = frames
    assert len(duck) == len(entity) == len(dask)
    for col in [i.id for i in lib.for_task(lib.CHANNEL_PREFERENCE)]:
        a, b = duck[col], dask[col]
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            np.testing.assert_allclose(a.astype(float), b.astype(float), equal_nan=True, err_msg=col)
        else:
            assert (a.astype(str) == b.astype(str)).all(), col


@pytest.mark.slow
def test_a_month_snapshot_brings_every_province_customers_for_every_task(tiny_world):
    """Without a province, a model fitted on a whole month's customers gets every province's, each
    named with its province, whether or not the task reads the province as an indicator."""
    from core.tasks import TASKS
    from features.build import offline_file
    from training.data import snapshot_frame

    s, month = tiny_world.settings, tiny_world.months[-1]
    snapshot = pd.concat(
        [
            pd.read_parquet(offline_file(s.offline_dir, "profile", p, month), columns=["msisdn"]).assign(
                province=p
            )
            for p in tiny_world.config.provinces
        ]
    )
    want = snapshot.sort_values("msisdn").reset_index(drop=True)
    for name, t in TASKS.items():
        frame = snapshot_frame(s, t, month)
        got = frame[["msisdn", "province"]].sort_values("msisdn").reset_index(drop=True)
        pd.testing.assert_frame_equal(got.astype(str), want.astype(str), obj=name)
        assert (frame["month"] == month).all(), name
