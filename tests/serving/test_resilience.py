"""Property-based API checks, and the online store going down and coming back."""

import shutil
import subprocess
import time
import uuid

import httpx
import pytest

from tests.servers import Server, free_port, schemathesis_errors


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(server, keys):
    """Generated requests against the OpenAPI document: no 5xx (live scoring: nothing prepared here)."""
    errors = schemathesis_errors(server.url, keys["group"])
    assert errors is None, errors


@pytest.mark.redis
def test_online_store_down_gives_503_and_recovers(trained_world, keys, customers, tmp_path):
    """A private Redis for this test: stop it, expect 503; start and reload it, expect 200."""
    from core.settings import Settings
    from features.store import apply_repository, materialize_latest

    redis_server = shutil.which("redis-server")
    assert redis_server, "redis-server is needed for this test (Debian package redis-server)"
    port = free_port()

    def start_redis():
        proc = subprocess.Popen(
            [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        return proc

    # a work directory of its own (its registry) sharing the trained world's data and models
    work = tmp_path / "work"
    work.mkdir()
    for name in ("offline", "truth", "mlflow.db", "mlartifacts", "serving"):
        (work / name).symlink_to(trained_world.settings.workdir / name)
    env = {
        "TELCOML_ONLINE_STORE": "redis",
        "TELCOML_REDIS_URL": f"127.0.0.1:{port}",
        "TELCOML_PROJECT": f"r{uuid.uuid4().hex[:6]}",
    }
    settings = Settings(
        workdir=work, online_store="redis", redis_url=env["TELCOML_REDIS_URL"], project=env["TELCOML_PROJECT"]
    )
    redis_proc = start_redis()
    materialize_latest(apply_repository(settings), trained_world.months[-1])
    srv = Server(work, env)
    try:
        body = {"msisdn": customers["GD"]}
        headers = {"X-API-Key": keys["group"]}
        assert httpx.post(f"{srv.url}/score", json=body, headers=headers, timeout=30).status_code == 200
        redis_proc.terminate()
        redis_proc.wait(10)
        down = httpx.post(f"{srv.url}/score", json=body, headers=headers, timeout=30)
        assert down.status_code == 503 and down.json()["error"] == "store_unavailable"
        assert "Traceback" not in down.text
        assert httpx.get(f"{srv.url}/readyz", timeout=10).status_code != 200
        redis_proc = start_redis()
        materialize_latest(apply_repository(settings), trained_world.months[-1])  # Redis kept nothing
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status != 200:
            status = httpx.post(f"{srv.url}/score", json=body, headers=headers, timeout=30).status_code
            time.sleep(0.5)
        assert status == 200
    finally:
        srv.stop()
        redis_proc.terminate()
