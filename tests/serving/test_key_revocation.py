"""Key management reaches a running BentoML server within seconds: a key created after start-up
is accepted, a revoked or expired one gets 401 saying why, and its use is noted."""

import time
from datetime import UTC, datetime, timedelta

import httpx
from typer.testing import CliRunner

from serving.security import RECHECK_SECONDS, create_key, last_used
from telcoml.cli import app

#: revocation must reach the server within this many seconds (it checks the key file every second)
WITHIN_SECONDS = 5


def _score(server, key, msisdn):
    return httpx.post(f"{server.url}/score", json={"msisdn": msisdn}, headers={"X-API-Key": key}, timeout=30)


def _until(server, key, msisdn, status) -> tuple[httpx.Response, float]:
    """Poll /score until it answers ``status``; the answer and the seconds it took."""
    started = time.monotonic()
    while True:
        r = _score(server, key, msisdn)
        if r.status_code == status or time.monotonic() - started > WITHIN_SECONDS:
            return r, time.monotonic() - started
        time.sleep(0.1)


def test_a_revoked_key_gets_401_within_seconds(server, keys, trained_world, customers):
    settings = trained_world.settings
    key = create_key(settings, "crm-gd-revoked", "GD")
    accepted, _ = _until(server, key, customers["GD"], 200)  # created after the server started
    assert accepted.status_code == 200, accepted.text
    assert "crm-gd-revoked" in last_used(settings)
    workdir = str(settings.workdir)
    revoked = CliRunner().invoke(app, ["keys", "revoke", "crm-gd-revoked", "--workdir", workdir])
    assert revoked.exit_code == 0, revoked.output
    refused, seconds = _until(server, key, customers["GD"], 401)
    assert refused.status_code == 401, refused.text
    assert seconds <= RECHECK_SECONDS + 1.5, seconds
    assert refused.json()["error"] == "unauthorized" and "revoked" in refused.json()["message"]
    # the other keys are untouched, and an unknown key still reads as unknown
    assert _score(server, keys["GD"], customers["GD"]).status_code == 200
    assert "unknown" in _score(server, "tcm_not_a_key", customers["GD"]).json()["message"]


def test_an_expired_key_gets_401_saying_so(server, trained_world, customers):
    expires = datetime.now(UTC) + timedelta(seconds=3)
    key = create_key(trained_world.settings, "crm-gd-expiring", "GD", expires=expires)
    accepted, _ = _until(server, key, customers["GD"], 200)
    assert accepted.status_code == 200, accepted.text
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    refused = _score(server, key, customers["GD"])
    assert refused.status_code == 401, refused.text
    assert "expired" in refused.json()["message"] and "crm-gd-expiring" in refused.json()["message"]
