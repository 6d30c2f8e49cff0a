"""Campaigns over HTTP (for the console): plan and export, then the response report, by key scope."""

import httpx

CAMPAIGN = {
    "name": "http-care",
    "purpose": "care",
    "province": "GD",
    "start": "2026-07-01",
    "offer": {"en": "A thank-you call.", "zh": "感恩回访。"},
    "control_share": 0.2,
}


def post(server, route, body, key):
    return httpx.post(f"{server.url}{route}", json=body, headers={"X-API-Key": key}, timeout=120)


def test_a_campaign_is_planned_exported_and_reported_over_http(server, keys):
    r = post(server, "/campaigns/plan", {**CAMPAIGN, "export": True}, keys["GD"])
    assert r.status_code == 200, r.text
    plan = r.json()
    assert sum(plan["suppressed"].values()) + plan["control"] + plan["to_contact"] == plan["selected"] > 0
    assert plan["files"]["list_csv"] == "campaigns/http-care/campaign_http-care.csv"

    r = post(server, "/campaigns/report", {"name": "http-care", "as_of": "2026-07-31"}, keys["GD"])
    assert r.status_code == 200, r.text
    overall = r.json()["overall"]
    assert (overall["contacted"], overall["control"]) == (plan["to_contact"], plan["control"])
    assert overall["took_contacted"] == 0 and r.json()["events"] == 0  # nothing has come back yet


def test_campaigns_keep_to_the_keys_province_and_refuse_bad_input(server, keys):
    assert post(server, "/campaigns/plan", CAMPAIGN, keys["HE"]).status_code == 403
    assert httpx.post(f"{server.url}/campaigns/plan", json=CAMPAIGN, timeout=30).status_code == 401
    r = post(server, "/campaigns/plan", {**CAMPAIGN, "control_share": 0.9}, keys["GD"])
    assert r.status_code == 422 and r.json()["field"] == "control_share"
    r = post(
        server,
        "/campaigns/plan",
        {**CAMPAIGN, "targets": {"indicators": {"no_such": {"at_least": 1}}}},
        keys["GD"],
    )
    assert r.status_code == 422 and "no_such" in r.json()["message"]
    assert post(server, "/campaigns/report", {"name": "../../etc"}, keys["GD"]).status_code == 422
    assert post(server, "/campaigns/report", {"name": "never-planned"}, keys["GD"]).status_code == 404
    assert (
        post(server, "/campaigns/report", {"name": "http-care", "as_of": "July"}, keys["GD"]).status_code
        == 422
    )
