"""The CRM endpoints over HTTP on a real BentoML server."""

import re
import threading

import httpx
import pytest


def post(server, path, body, key=None, **kw):
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30, **kw)


def test_score_answers_every_evaluation_with_guidance(server, keys, customers):
    r = post(server, "/score", {"msisdn": customers["GD"]}, keys["group"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["province"] == "GD"
    assert body["credit_grade"]["code"] in range(1, 6)
    assert body["credit_grade"]["label_zh"] in {"信用极差", "信用较差", "信用一般", "信用较好", "信用极好"}
    assert sum(body["credit_grade"]["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    for name in ("tariff_sensitivity", "complaint_sensitivity"):
        assert 0 <= body[name]["score"] <= 100 and body[name]["level"] in {"low", "medium", "high"}
        assert body[name]["population_average"] > 0
    assert 0 <= body["churn"]["probability"] <= 1 and body["churn"]["band"] in {"low", "medium", "high"}
    assert len(body["channel_preference"]["ranking"]) == 5
    assert body["credit_grade"]["reasons"] and body["credit_grade"]["reasons"][0]["text_zh"]
    topics = {g["topic"] for g in body["guidance"]}
    assert "complaint_handling" in topics and "campaign_waves" in topics
    assert set(body["model_versions"]) == {
        "credit_grade",
        "tariff_sensitivity",
        "complaint_sensitivity",
        "churn",
        "channel_preference",
    }
    assert body["features_as_of"].startswith("2026-06-30")


def test_bearer_token_works_too(server, keys, customers):
    r = httpx.post(
        f"{server.url}/score",
        json={"msisdn": customers["HE"]},
        headers={"Authorization": f"Bearer {keys['group']}"},
        timeout=30,
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({"msisdn": "12345"}, 422, "invalid_msisdn"),
        ({"msisdn": "1381234abcd"}, 422, "invalid_msisdn"),
        ({"msisdn": "19999999999"}, 404, "unknown_customer"),
    ],
)
def test_bad_numbers_get_clear_errors(server, keys, body, status, code):
    r = post(server, "/score", body, keys["group"])
    assert r.status_code == status and r.json()["error"] == code
    assert "Traceback" not in r.text and "19999999999" not in r.json()["message"]  # masked


def test_malformed_json_and_wrong_types_are_400_without_traceback(server, keys):
    for raw in ('{"msisdn": ', "not json", '{"msisdn": 13812345678}', "{}"):
        r = httpx.post(
            f"{server.url}/score",
            content=raw,
            headers={"X-API-Key": keys["group"], "Content-Type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 400, (raw, r.status_code, r.text)
        assert "Traceback" not in r.text and 'File "' not in r.text


def test_keys_are_required_and_scoped_by_province(server, keys, customers):
    assert post(server, "/score", {"msisdn": customers["GD"]}).status_code == 401
    assert post(server, "/score", {"msisdn": customers["GD"]}, "tcm_not_a_key").status_code == 401
    assert post(server, "/score", {"msisdn": customers["GD"]}, keys["GD"]).status_code == 200
    # another province's customer is answered like an unknown number: nothing to learn
    other = post(server, "/score", {"msisdn": customers["HE"]}, keys["GD"])
    unknown = post(server, "/score", {"msisdn": "19999999999"}, keys["GD"])
    assert other.status_code == unknown.status_code == 404
    assert other.json()["error"] == unknown.json()["error"] == "unknown_customer"
    same = [re.sub(r"\d{3}\*{4}\d{4}", "N", r.json()["message"]) for r in (other, unknown)]
    assert same[0] == same[1]
    assert "credit_grade" not in other.json()
    assert post(server, "/reload", {}, keys["GD"]).status_code == 403


def test_batch_scores_the_good_items_and_reports_the_bad(server, keys, customers):
    items = [customers["GD"], "123", "19999999999", customers["HE"]]
    r = post(server, "/score_batch", {"msisdns": items}, keys["GD"])
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 422, 404, 404]
    assert results[0]["credit_grade"]["code"] in range(1, 6)
    assert r.json()["scored"] == 1


def test_limits_on_batch_and_body_size(server, keys, customers):
    r = post(server, "/score_batch", {"msisdns": [customers["GD"]] * 501}, keys["group"])
    assert r.status_code == 413 and r.json()["error"] == "batch_too_large"
    huge = '{"msisdn": "' + "1" * 100_000 + '"}'
    r = httpx.post(
        f"{server.url}/score",
        content=huge,
        headers={"X-API-Key": keys["group"], "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413
    r = httpx.post(
        f"{server.url}/score",
        content="msisdn=13800000000",
        headers={"X-API-Key": keys["group"], "Content-Type": "multipart/form-data"},
        timeout=30,
    )
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"


def test_health_readiness_and_openapi(server):
    assert httpx.get(f"{server.url}/livez").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    spec = httpx.get(f"{server.url}/docs.json").json()
    assert {"/score", "/score_batch", "/reload"} <= set(spec["paths"])


def test_reload_swaps_champions_without_dropping_requests(server, keys, customers, trained_world):
    from mlflow import MlflowClient

    from core.tasks import TASKS
    from training.registry import configure_mlflow
    from training.train import train_task
    from training.tune import TuningBudget

    configure_mlflow(trained_world.settings, TASKS["churn"].experiment_name())
    client = MlflowClient()
    name = TASKS["channel_preference"].model_name()
    before = post(server, "/models", {}, keys["group"]).json()["versions"]["channel_preference"]
    new = train_task(
        trained_world.settings,
        "channel_preference",
        budget=TuningBudget(trials=1, max_rounds=20, seed=11, threads=1),
        train_months=3,
    )
    client.set_registered_model_alias(name, "champion", new.version)  # promote by hand for the test

    statuses, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            statuses.append(post(server, "/score", {"msisdn": customers["GD"]}, keys["group"]).status_code)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    r = post(server, "/reload", {}, keys["group"])
    stop.set()
    for t in threads:
        t.join()
    assert r.status_code == 200, r.text
    assert r.json()["previous"]["channel_preference"] == before
    assert r.json()["current"]["channel_preference"] == new.version
    assert statuses and set(statuses) == {200}
    after = post(server, "/score", {"msisdn": customers["GD"]}, keys["group"]).json()
    assert after["model_versions"]["channel_preference"] == new.version


def test_logs_mask_phone_numbers(server, keys, customers):
    number = customers["HE"]
    assert post(server, "/score", {"msisdn": number}, keys["group"]).status_code == 200
    log = open(server.log.name).read()
    masked = f"{number[:3]}****{number[-4:]}"
    assert masked in log and number not in log
