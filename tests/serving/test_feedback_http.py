"""POST /feedback over HTTP on a real BentoML server: stored once, all or nothing, by scope."""

import httpx


def post(server, body, key):
    return httpx.post(f"{server.url}/feedback", json=body, headers={"X-API-Key": key}, timeout=30)


def contact(event_id, **over):
    event = {
        "type": "campaign_contact",
        "event_id": event_id,
        "time": "2026-06-20T10:00:00+08:00",
        "campaign_id": "roam-gd",
        "wave": 1,
        "msisdn": "13812345678",
        "channel": "sms_hall",
        "outcome": "reached",
    }
    return {**event, **over}


def test_feedback_is_stored_once_and_a_bad_batch_not_at_all(server, keys):
    r = post(server, contact("http-1"), keys["GD"])  # one event; the province from the key
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [{"event_id": "http-1", "status": "stored"}]

    r = post(server, {"events": [contact("http-1"), contact("http-2")]}, keys["GD"])
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["duplicate", "stored"]
    assert (r.json()["stored"], r.json()["duplicate"]) == (1, 1)

    r = post(server, {"events": [contact("http-3"), contact("http-4", wave=0)]}, keys["GD"])
    assert r.status_code == 422 and r.json()["error"] == "invalid_event"
    assert "event 1" in r.json()["message"] and r.json()["field"] == "wave"
    r = post(server, {"events": [contact("http-3")]}, keys["GD"])
    assert r.json()["results"][0]["status"] == "stored"  # nothing of the refused batch was kept


def test_feedback_refuses_another_province_and_oversized_batches(server, keys):
    r = post(server, {"events": [contact("http-5", province="HE")]}, keys["GD"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert post(server, {"events": [contact("http-5", province="HE")]}, keys["HE"]).status_code == 200
    assert post(server, contact("http-6"), keys["group"]).status_code == 422  # a group key names it
    r = httpx.post(f"{server.url}/feedback", json=contact("http-7"), timeout=30)
    assert r.status_code == 401
    r = post(server, {"events": [contact(f"big-{i}") for i in range(501)]}, keys["GD"])
    assert r.status_code == 413 and r.json()["error"] == "batch_too_large"
    r = post(server, {"events": [contact(f"full-{i}") for i in range(500)]}, keys["GD"])
    assert r.status_code == 200 and r.json()["stored"] == 500


def test_a_body_that_is_not_one_json_object_is_a_400_not_a_server_error(server, keys):
    """BentoML answers a root-input body that is not JSON with a 500: the edge refuses it first
    (schemathesis found ``\\x00``)."""
    for body in (b"\x00", b"[]", b'"event"', b"{", b"\xff\xfe", b"[" * 5000 + b"]" * 5000):
        r = httpx.post(
            f"{server.url}/feedback",
            content=body,
            headers={"X-API-Key": keys["GD"], "Content-Type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", (body[:10], r.text)


def test_an_event_id_resent_with_other_content_is_a_conflict_not_stored(server, keys):
    assert post(server, contact("http-conflict"), keys["GD"]).json()["stored"] == 1
    r = post(server, contact("http-conflict", outcome="accepted"), keys["GD"])
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "conflict"
    assert (r.json()["stored"], r.json()["conflict"]) == (0, 1)
    assert post(server, contact("http-conflict"), keys["GD"]).json()["duplicate"] == 1  # the first stayed
