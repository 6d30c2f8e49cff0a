"""Two provinces with different optional sets serve side by side, each with its own models."""

import httpx
import numpy as np
import pytest

from features.provinces import load_province
from features.store import online_view, open_store
from serving.security import create_key
from tests.servers import Server
from training.registry import configure_mlflow, load_task_model

# slow: builds and serves a two-province world of its own (~50 s); CI runs it (make test-all)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def province_keys(province_world):
    s = province_world.settings
    return {
        "group": create_key(s, "crm-group"),
        "GD": create_key(s, "crm-gd", "GD"),
        "HE": create_key(s, "crm-he", "HE"),
    }


@pytest.fixture(scope="module")
def province_server(province_world, province_keys):
    srv = Server(province_world.settings.workdir)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def province_customers(province_world):
    latest = province_world.months[-1]
    labels = province_world.labels[province_world.labels["month"] == latest]
    return {p: labels.loc[labels["province"] == p, "msisdn"].iloc[:4].tolist() for p in ("GD", "HE")}


def post(server, path, body, key):
    return httpx.post(f"{server.url}{path}", json=body, headers={"X-API-Key": key}, timeout=60)


def _own_probabilities(world, province: str, msisdns: list[str]) -> np.ndarray:
    """The province's credit model, in process, on the province's online indicators."""
    result = world.results[province]
    configure_mlflow(world.settings, "telcoml/serving")  # the registry of this world, whatever ran before
    model = load_task_model(f"models:/{result.model_name}/{result.version}")
    view = online_view(open_store(world.settings), msisdns, "credit_grade", province)
    return model.probabilities(view)


def test_each_province_answers_with_its_own_credit_model(
    province_server, province_keys, province_customers, province_world
):
    for province in ("GD", "HE"):
        numbers = province_customers[province]
        r = post(province_server, "/score_batch", {"msisdns": numbers}, province_keys[province])
        assert r.status_code == 200, r.text
        answers = r.json()["results"]
        own = _own_probabilities(province_world, province, numbers)
        for answer, p in zip(answers, own):
            assert answer["status"] == 200 and answer["province"] == province
            assert answer["models"]["credit_grade"] == f"models:/telcoml-credit_grade-{province.lower()}/1"
            assert answer["models"]["churn"] == "models:/telcoml-churn/1"  # no provincial churn: national
            got = [answer["credit_grade"]["probabilities"][str(k)] for k in range(1, 6)]
            assert got == pytest.approx(p.tolist(), abs=1e-4)
            indicators = {reason["indicator"] for reason in answer["credit_grade"]["reasons"]}
            chosen = {
                i.id
                for i in load_province(province_world.settings, province).effective_indicators("credit_grade")
            }
            assert indicators <= chosen  # a reason is never an indicator the province does not use


def test_one_batch_of_both_provinces_is_split_by_province(province_server, province_keys, province_customers):
    numbers = province_customers["GD"][:2] + province_customers["HE"][:2]
    r = post(province_server, "/score_batch", {"msisdns": numbers}, province_keys["group"])
    models = [a["models"]["credit_grade"] for a in r.json()["results"]]
    assert models == ["models:/telcoml-credit_grade-gd/1"] * 2 + ["models:/telcoml-credit_grade-he/1"] * 2
    r = post(province_server, "/models", {}, province_keys["group"])
    body = r.json()
    assert body["provinces"]["GD"]["credit_grade"] == "models:/telcoml-credit_grade-gd/1"
    assert body["provinces"]["HE"]["tariff_sensitivity"] == "models:/telcoml-tariff_sensitivity/1"
    own = post(province_server, "/models", {}, province_keys["GD"]).json()  # a province sees its own
    assert set(own["provinces"]) == {"GD"}


def test_a_province_grades_with_its_cutoffs_and_guidance(
    province_server, province_keys, province_customers, province_world
):
    config = load_province(province_world.settings, "GD")
    for msisdn in province_customers["GD"]:
        answer = post(province_server, "/score", {"msisdn": msisdn}, province_keys["GD"]).json()
        p = np.array([answer["credit_grade"]["probabilities"][str(k)] for k in range(1, 6)])
        expected = 1 + int(np.sum(p @ np.arange(1, 6) >= np.array(config.grade_cutoffs)))
        if any(r.get("rule") == "black_list" for r in answer["credit_grade"]["reasons"]):
            expected = min(expected, 2)
        assert answer["credit_grade"]["code"] == expected
        handling = next(g for g in answer["guidance"] if g["topic"] == "complaint_handling")
        own = config.guidance.get(expected)
        if own is not None and own.complaint_handling is not None:
            assert handling["text_zh"] == own.complaint_handling.zh
        gift = next(g for g in answer["guidance"] if g["topic"] == "gift_ceiling")
        if own is not None and own.gift_ceiling is not None:
            assert gift["value"] == own.gift_ceiling.value


def test_batch_scoring_a_province_uses_its_model_and_cutoffs(province_world, tmp_path):
    import pandas as pd

    from serving.batch import score_province, snapshot_chunks
    from serving.champions import load_champions

    s = province_world.settings
    result = score_province(s, load_champions(s), "GD", output_dir=tmp_path, record=False)
    written = pd.read_parquet(result.parquet)
    snapshot = next(snapshot_chunks(s, "GD", result.month, 1_000_000))
    assert "refund_to_bill_ratio" in snapshot.columns  # GD's custom view joins the snapshot
    gd = province_world.results["GD"]
    configure_mlflow(s, "telcoml/serving")
    p = load_task_model(f"models:/{gd.model_name}/{gd.version}").probabilities(snapshot)
    cutoffs = np.array(load_province(s, "GD").grade_cutoffs)
    expected = 1 + ((p @ np.arange(1, 6))[:, None] >= cutoffs[None, :]).sum(axis=1)
    expected = np.where(snapshot["black_list_flag"].to_numpy() == 1, np.minimum(expected, 2), expected)
    assert written["msisdn"].tolist() == snapshot["msisdn"].tolist()
    assert (written["credit_grade"].to_numpy() == expected).all()
