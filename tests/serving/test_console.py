"""The web console end to end: ``telcoml console`` and the console mounted in the BentoML service, on the
trained world, driven by headless Chromium (Debian's, ``make install-browser``) through Playwright.

The servers and the browser are ``tests/serving/conftest.py``'s fixtures; screenshots go to
``$TELCOML_TEST_ARTIFACTS`` (default ``tests/artifacts/``).
"""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest

from core.msisdn import mask_msisdn
from tests.browser import look_up, sign_in

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def complaining(trained_world) -> str:
    """A Guangdong customer of the latest snapshot with two complaints in three months (the group's
    warning line)."""
    s = trained_world.settings
    month = trained_world.months[-1]
    frame = pd.read_parquet(next((s.offline_dir / "complaints_service").glob(f"GD_{month}*.parquet")))
    return str(frame.loc[frame["complaint_count_3m"] >= 2, "msisdn"].iloc[0])


def score(server, key: str, msisdn: str) -> dict:
    response = httpx.post(
        f"{server.url}/score", json={"msisdn": msisdn}, headers={"X-API-Key": key}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.browser
def test_an_agent_reads_grade_guidance_and_warning(console, page, keys, complaining, server):
    sign_in(page, console.url, keys["GD"])
    assert keys["GD"] not in page.url
    look_up(page, complaining)
    answer = score(server, keys["GD"], complaining)  # the console reads what /score answers
    grade = answer["credit_grade"]
    assert page.inner_text("#grade .code") == str(grade["code"])
    assert page.inner_text("#grade .label") == grade["label_zh"]
    assert page.inner_text("#guidance li.lead") == answer["guidance"][0]["text_zh"]
    warning = page.locator('.warning[data-code="complaints_over_threshold"]')
    assert warning.count() == 1 and "投诉超过本省预警线" in warning.inner_text()
    assert (
        page.locator(".warning").first.evaluate("e => getComputedStyle(e).backgroundColor")
        == "rgb(198, 40, 40)"
    )
    assert page.locator("#evaluations .evaluation").count() == len(
        [
            t
            for t in answer
            if t
            in ("credit_grade", "tariff_sensitivity", "complaint_sensitivity", "churn", "channel_preference")
        ]
    )
    assert page.locator('#indicators tr[data-indicator="latest_complaint"] td').inner_text() != "无"
    assert answer["features_as_of"] in page.inner_text("#provenance")
    assert answer["models"]["credit_grade"] in page.inner_text("#provenance")

    page.click("#language")  # English, kept for the session
    look_up(page, complaining)
    assert page.inner_text("#grade .label") == grade["label_en"]
    assert "Complaints over the province's warning line" in page.inner_text("#warnings")
    assert page.inner_text("#guidance li.lead") == answer["guidance"][0]["text_en"]


@pytest.mark.browser
def test_a_gd_key_cannot_open_a_hebei_customer(console, page, keys, customers):
    sign_in(page, console.url, keys["GD"])
    look_up(page, customers["HE"])
    out_of_scope = page.inner_text("#lookup-error")
    assert page.locator("#grade").count() == 0
    look_up(page, "13000000000")  # no one's number
    assert page.inner_text("#lookup-error") == out_of_scope
    # and the Hebei key opens it
    page.click("#sign-out")
    sign_in(page, console.url, keys["HE"])
    look_up(page, customers["HE"])
    assert page.locator("#grade .code").count() == 1


@pytest.mark.browser
def test_a_handling_outcome_is_recorded_and_stored(console, page, keys, customers, trained_world):
    from features.feedback import FeedbackStore

    sign_in(page, console.url, keys["GD"])
    look_up(page, customers["GD"])
    order = f"WO-console-{time.time_ns()}"
    page.fill('input[name="work_order_id"]', order)
    page.select_option('select[name="verified"]', "unfounded")
    page.fill('input[name="gift_amount"]', "5")
    page.fill('input[name="handling_hours"]', "3.5")
    page.fill('input[name="satisfaction"]', "4")
    with page.expect_navigation():
        page.click("#record")
    assert page.inner_text("#outcome-status").startswith("已保存")
    event_id = page.get_attribute("#outcome-status", "data-event")
    stored = {e.event_id: e for e in FeedbackStore(trained_world.settings.feedback_store).pending()}
    event = stored[event_id]
    assert (event.type, event.work_order_id, event.msisdn, event.province) == (
        "complaint_outcome",
        order,
        customers["GD"],
        "GD",
    )
    assert (event.verified, event.gift_amount, event.handling_hours, event.satisfaction) == (
        "unfounded",
        5.0,
        3.5,
        4,
    )

    page.fill('input[name="work_order_id"]', "WO-2")  # a gift over the ceiling of 500 yuan
    page.fill('input[name="handling_hours"]', "1")
    page.evaluate("document.querySelector('input[name=gift_amount]').removeAttribute('max')")
    page.fill('input[name="gift_amount"]', "800")
    with page.expect_navigation():
        page.click("#record")
    assert page.inner_text("#outcome-error").startswith("gift_amount")


@pytest.mark.browser
def test_the_service_serves_the_console_too(server, page, keys, customers):
    sign_in(page, f"{server.url}/console", keys["group"])
    look_up(page, customers["HE"])
    answer = score(server, keys["group"], customers["HE"])
    assert page.inner_text("#grade .code") == str(answer["credit_grade"]["code"])
    assert "(全部省份)" in page.inner_text("#signed-in")


def test_sign_in_session_and_forms_are_guarded(console, keys, customers):
    with httpx.Client(base_url=console.url, timeout=30) as client:
        login = client.get("/login")
        csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
        assert client.post("/login", data={"key": "tcm_wrong", "csrf": csrf}).status_code == 401
        assert client.post("/login", data={"key": keys["GD"]}).status_code == 403  # no CSRF token
        signed = client.post("/login", data={"key": keys["GD"], "csrf": csrf})
        assert signed.status_code == 303 and keys["GD"] not in signed.headers["location"]
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and keys["GD"] not in cookie
        page = client.get("/customer")
        assert page.status_code == 200 and "content-security-policy" in page.headers
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        assert csrf != signed.text  # a new token after sign-in
        form = {"csrf": csrf, "action": "search"}
        assert client.post("/customer", data={**form, "msisdn": customers["GD"]}).status_code == 200
        assert client.post("/customer", data={**form, "msisdn": "1381234234"}).status_code == 422
        assert (
            client.post("/customer", data={"action": "search", "msisdn": customers["GD"]}).status_code == 403
        )
        assert client.post("/customer", data={**form, "msisdn": "1" * 9000}).status_code == 413
        assert client.post("/customer", json={**form, "msisdn": customers["GD"]}).status_code == 415
        client.post("/logout", data={"csrf": csrf})
        assert client.get("/customer").status_code == 303  # signed out: to the sign-in page
    with httpx.Client(base_url=console.url, timeout=30) as stranger:
        assert stranger.post("/customer", data={**form, "msisdn": customers["GD"]}).status_code == 303
    log = console.log_path.read_text()
    assert customers["GD"] not in log and mask_msisdn(customers["GD"]) in log


def test_a_revoked_key_ends_its_session_within_seconds(console, trained_world):
    from serving.security import create_key, revoke_key

    s = trained_world.settings
    key = create_key(s, "console-revoked", "GD")
    time.sleep(1.1)  # a new key, like a revocation, is seen within the key ring's second
    with httpx.Client(base_url=console.url, timeout=30) as client:
        csrf = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
        assert client.post("/login", data={"key": key, "csrf": csrf}).status_code == 303
        page = client.get("/customer")
        assert page.status_code == 200
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        revoke_key(s, "console-revoked")
        time.sleep(1.5)  # the key ring looks at the key file at most every second
        ended = client.get("/customer")
        assert ended.status_code == 303 and ended.headers["location"].endswith("/login?expired=1")
        refused = client.post("/login", data={"key": key, "csrf": csrf})
        assert refused.status_code == 401 and "revoked" in refused.text
