"""API key management: `telcoml keys create|list|revoke`, expiry, last use, and the server's key ring
noticing a changed key file (the live server's side is tests/serving/test_key_revocation.py)."""

import json
import os
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from typer.testing import CliRunner

from core.errors import ConfigurationError
from core.settings import Settings
from serving.security import (
    UNKNOWN_KEY,
    KeyRing,
    create_key,
    key_expiry,
    keys_file,
    last_used,
    load_keys,
    revoke_key,
    uses_dir,
)
from telcoml.cli import app

runner = CliRunner()


def _keys(tmp_path, *args):
    return runner.invoke(app, ["keys", *args, "--workdir", str(tmp_path)])


def test_list_shows_a_created_key_and_never_the_secret(tmp_path):
    created = _keys(tmp_path, "create", "crm-gd", "--province", "gd", "--expires-in-days", "30")
    assert created.exit_code == 0, created.output
    secret = created.output.strip().split("=", 1)[1]
    assert secret.startswith("tcm_")
    listed = _keys(tmp_path, "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "crm-gd" and row["province"] == "GD" and row["status"] == "active"
    assert row["last_used"] is None and row["revoked"] is None
    expires = datetime.fromisoformat(row["expires"]) - datetime.fromisoformat(row["created"])
    assert expires == timedelta(days=30)
    table = _keys(tmp_path, "list")
    digest = load_keys(Settings(workdir=tmp_path))[0].digest
    for output in (listed.output, table.output):
        assert secret not in output and secret[4:12] not in output and digest not in output
    assert "crm-gd" in table.output and "active" in table.output


def test_revoke_marks_the_key_and_an_unknown_name_is_a_clear_error(tmp_path):
    _keys(tmp_path, "create", "crm-he", "--province", "HE")
    unknown = _keys(tmp_path, "revoke", "crm-xx")
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output
    message = " ".join(unknown.output.split())
    assert "no API key named 'crm-xx'" in message and "keys: crm-he" in message
    revoked = _keys(tmp_path, "revoke", "crm-he")
    assert revoked.exit_code == 0, revoked.output
    (row,) = json.loads(_keys(tmp_path, "list", "--format", "json").stdout)
    assert row["status"] == "revoked" and row["revoked"]
    again = revoke_key(Settings(workdir=tmp_path), "crm-he")  # revoking twice changes nothing
    assert again.revoked == row["revoked"]


def test_expiry_options_are_checked_before_anything_is_written(tmp_path):
    past = (date.today() - timedelta(days=2)).isoformat()
    for args, code, words in (
        (["--expires-in-days", "0"], 2, "Invalid value"),  # refused by the CLI itself (min 1)
        (["--expires", past], 1, "already past"),
        (["--expires", "2027-13-01"], 2, "not a date"),  # a usage error naming the option
        (["--expires", "2099-01-01", "--expires-in-days", "3"], 1, "not both"),
    ):
        result = _keys(tmp_path, "create", "crm-gd", *args)
        assert result.exit_code == code and words in " ".join(result.output.split()), (args, result.output)
    assert not keys_file(Settings(workdir=tmp_path)).exists()
    now = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    # --expires names the last day the key works: refused from the next midnight, UTC
    assert key_expiry(until=date(2026, 12, 31), now=now) == datetime(2027, 1, 1, tzinfo=UTC)
    assert key_expiry(days=2, now=now) == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    assert key_expiry(now=now) is None


def test_the_key_ring_follows_the_key_file_revocation_and_expiry(tmp_path):
    settings = Settings(workdir=tmp_path)
    ring = KeyRing(settings, recheck_seconds=0)
    group = create_key(settings, "crm-group")
    assert ring.caller(group).name == "crm-group"  # a key created after the server started
    soon = create_key(settings, "crm-soon", "GD", expires=datetime.now(UTC) + timedelta(seconds=1))
    assert ring.caller(soon).province == "GD"
    revoke_key(settings, "crm-group")
    assert ring.caller(group) is None
    assert "revoked" in ring.refusal(group)
    time.sleep(1.1)
    assert ring.caller(soon) is None and "expired" in ring.refusal(soon)
    assert ring.refusal("tcm_not_a_key") == ring.refusal(None) == UNKNOWN_KEY
    # a file that does not parse keeps the keys in force (logged), rather than refusing everyone
    still = create_key(settings, "crm-still")
    assert ring.caller(still) is not None
    keys_file(settings).write_text("{not json")
    assert ring.caller(still) is not None


def test_the_ring_rechecks_the_file_at_most_every_interval(tmp_path):
    settings = Settings(workdir=tmp_path)
    ring = KeyRing(settings, recheck_seconds=3600)
    key = create_key(settings, "crm-late")
    assert ring.caller(key) is None  # not looked at again within the hour
    ring.refresh(force=True)  # what /reload does
    assert ring.caller(key) is not None


def test_last_use_is_noted_at_most_once_a_minute(tmp_path):
    settings = Settings(workdir=tmp_path)
    key = create_key(settings, "crm-used")
    ring = KeyRing(settings)
    assert last_used(settings) == {}
    ring.caller(key)
    first = last_used(settings)["crm-used"]
    assert abs((datetime.now(UTC) - first).total_seconds()) < 5
    marker = uses_dir(settings) / "crm-used"
    os.utime(marker, (1_000_000_000, 1_000_000_000))
    ring.caller(key)  # within the minute: not written again
    assert marker.stat().st_mtime == 1_000_000_000
    create_key(settings, "crm-used")  # a replaced key starts unused
    assert "crm-used" not in last_used(settings)


def test_concurrent_creates_lose_no_key(tmp_path):
    settings = Settings(workdir=tmp_path)
    names = [f"crm-{i}" for i in range(12)]
    threads = [threading.Thread(target=create_key, args=(settings, n)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(k.name for k in load_keys(settings)) == sorted(names)
    assert keys_file(settings).stat().st_mode & 0o777 == 0o600


def test_an_expiry_already_past_is_refused_by_the_library(tmp_path):
    with pytest.raises(ConfigurationError, match="already past"):
        create_key(Settings(workdir=tmp_path), "crm-gd", expires=datetime.now(UTC) - timedelta(seconds=1))
