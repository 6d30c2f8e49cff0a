"""Adaptive batching on the real server: concurrent callers merged into one batch, each
caller's key scope still holding item by item inside it."""

from concurrent.futures import ThreadPoolExecutor

import httpx


def post(server, path, body, key):
    return httpx.post(f"{server.url}{path}", json=body, headers={"X-API-Key": key}, timeout=60)


def test_concurrent_single_requests_each_get_their_own_answer(server, keys, customers):
    """Many callers at once: every answer is for the number its caller asked about."""
    asks = [
        (customers["GD"], keys["group"]),
        (customers["HE"], keys["group"]),
        (customers["GD"], keys["GD"]),
        (customers["HE"], keys["HE"]),
    ] * 8
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda a: post(server, "/score", {"msisdn": a[0]}, a[1]), asks))
    for (msisdn, _), r in zip(asks, replies):
        assert r.status_code == 200, r.text
        assert r.json()["msisdn"] == msisdn
        assert r.json()["province"] == ("GD" if msisdn == customers["GD"] else "HE")
    # the same customer gets the same answer whoever shares its batch
    grades = {(r.json()["msisdn"], r.json()["credit_grade"]["code"]) for r in replies}
    assert len(grades) == 2


def test_scope_holds_per_caller_inside_merged_batches(server, keys, customers):
    """GD and HE keys ask for both provinces at once: each sees only its own customers."""
    asks = [
        (customers["GD"], "GD"),
        (customers["HE"], "GD"),
        (customers["GD"], "HE"),
        (customers["HE"], "HE"),
    ] * 8
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda a: post(server, "/score", {"msisdn": a[0]}, keys[a[1]]), asks))
    for (msisdn, key), r in zip(asks, replies):
        own = msisdn == customers[key]
        assert r.status_code == (200 if own else 404), (key, r.text)
        if not own:
            assert r.json()["error"] == "unknown_customer" and "credit_grade" not in r.json()


def test_reasons_option_and_batch_through_the_batcher(server, keys, customers):
    r = post(server, "/score", {"msisdn": customers["GD"], "reasons": "credit_grade"}, keys["group"])
    assert r.status_code == 200
    assert r.json()["credit_grade"]["reasons"] and r.json()["churn"]["reasons"] == []
    # a batch larger than one internal call is split, merged and answered in order
    numbers = [customers["GD"], customers["HE"]] * 60
    r = post(server, "/score_batch", {"msisdns": numbers, "reasons": "none"}, keys["GD"])
    assert r.status_code == 200
    assert [x["msisdn"] for x in r.json()["results"]] == numbers
    assert [x["status"] for x in r.json()["results"]] == [200, 404] * 60


def test_the_internal_batch_api_is_closed_to_outside_callers(server, customers):
    """score_items answers only the service's own client (a per-process token): from
    outside, even with items claiming the group scope, it is an unknown path."""
    forged = [
        {"msisdn": customers["GD"], "scope": "*", "reasons": "all", "grant": "0" * 64},
        {"msisdn": customers["HE"], "scope": "*"},
    ]
    for headers in ({}, {"x-telcoml-internal": "guess"}):
        r = httpx.post(f"{server.url}/score_items", json={"items": forged}, headers=headers, timeout=30)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert "credit_grade" not in r.text and customers["GD"] not in r.text
