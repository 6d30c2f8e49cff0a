"""The hardening probes against the CRM endpoints, replayed on a real BentoML server.

Each test is one probe of the hardening issue: what an attacker who can reach the port
(with or without a key) sends, and what must hold afterwards: bounded ``/metrics`` and
worker memory, bodies refused by the bytes read, no input echoed, no full number or
traceback in the logs, and nothing learned about other provinces.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import httpx
import pytest

#: Numbers used only by these probes: none of them may appear whole in a log or in /metrics.
PROBE_NUMBERS = ("13800138000", "13912345678", "15011112222", "18633334444")


def worker_rss(server) -> int:
    return server.rss()


def server_log(server) -> str:
    server.log.flush()
    return Path(server.log.name).read_text(errors="replace")


def test_a_path_flood_adds_no_metric_series_and_no_number(server):
    """Probe 1: 3,000 invented paths, phone numbers among them."""
    before = httpx.get(f"{server.url}/metrics", timeout=30).text
    rss_before = worker_rss(server)
    rng = random.Random(1)
    paths = [f"/{n}" for n in PROBE_NUMBERS] + [f"/x{rng.getrandbits(64):x}" for _ in range(3_000)]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        statuses = {client.get(path).status_code for path in paths}
    assert statuses == {404}
    after = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert not any(n in after for n in PROBE_NUMBERS)
    assert 'endpoint="/{unmatched}"' in after  # counted, under one label
    # the unmatched label's series appear once; nothing grows with the number of paths
    assert len(after) - len(before) < 20_000, (len(before), len(after))
    assert worker_rss(server) - rss_before < 80 * 2**20


def _chunked_request(url: str, path: str, headers: dict[str, str], total: int, chunk: int = 64 * 1024):
    """Send the head of a chunked request and ``total`` bytes of body (none: the answer is
    read before any body is sent); the answer's status line and the whole answer.

    Only as much is sent as the server will read: bytes it leaves unread when it closes
    make the kernel reset the connection, which can discard the answer before we read it.
    """
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    payload = b'{"msisdn": "' + b"1" * chunk
    sent = 0
    try:
        while sent < total:
            sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            sent += len(payload)
    except OSError:  # the server answered and closed
        pass
    answer = b""
    try:  # until the head and as much body as it announces (the server may keep the connection)
        while chunk_in := sock.recv(65536):
            answer += chunk_in
            head, _, body = answer.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                ),
                None,
            )
            if length is not None and len(body) >= length:
                break
    except OSError:
        pass
    sock.close()
    text = answer.decode(errors="replace")
    return text.split("\r\n", 1)[0], text, sent


def _flood(url: str, path: str, headers: dict[str, str], total: int) -> None:
    """Push ``total`` bytes of chunked body at the server, whatever it answers."""
    _chunked_request(url, path, headers, total)


def test_a_chunked_body_is_refused_by_the_bytes_read(server, keys):
    """Probe 2: no Content-Length and a body over the limit, with and without a key."""
    headers = {"Content-Type": "application/json", "X-API-Key": keys["group"]}
    started = time.perf_counter()
    # one chunk is already over the 64 KB limit: refused once it is read
    status, answer, _ = _chunked_request(server.url, "/score", headers, total=1)
    assert " 413 " in status + " ", answer[:300]
    assert "body_too_large" in answer and len(answer) < 2_000  # nothing echoed
    assert time.perf_counter() - started < 5
    # without a key: refused before a byte of the body is sent
    status, answer, _ = _chunked_request(server.url, "/score", {"Content-Type": "application/json"}, total=0)
    assert " 401 " in status + " ", answer[:300]
    # the full probes: 30 MB with a key, 200 MB without; the server's memory does not follow
    rss_before = worker_rss(server)
    _flood(server.url, "/score_batch", headers, 30 * 2**20)
    _flood(server.url, "/score", {"Content-Type": "application/json"}, 200 * 2**20)
    assert worker_rss(server) - rss_before < 50 * 2**20
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200  # and it still answers


@pytest.mark.parametrize(
    "path,raw",
    [
        ("/score", '{"msisdn": 13912345678}'),  # a number, not a string
        ("/score", '{"msisdn": ["13912345678"]}'),
        ("/score", '{"msisdn": "13912345678", "reasons": "15011112222"}'),
        ("/score", '{"msisdn": "18633334444"'),  # truncated JSON
        ("/score_batch", '{"msisdns": "13800138000"}'),
        ("/score_batch", '{"msisdns": [13800138000]}'),
    ],
)
def test_malformed_requests_get_one_error_shape_and_log_one_masked_line(server, keys, path, raw):
    """Probe 3: wrong types and broken JSON: 4xx in the service's shape, input never echoed,
    no traceback and no full number in the server's log."""
    r = httpx.post(
        f"{server.url}{path}",
        content=raw,
        headers={"X-API-Key": keys["group"], "Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= r.status_code < 500, r.text
    body = r.json()
    assert set(body) == {"error", "message"} and body["error"] == "invalid_request", body
    assert not any(n in r.text for n in PROBE_NUMBERS)
    time.sleep(0.3)  # the worker's log line
    log = server_log(server)
    assert not any(n in log for n in PROBE_NUMBERS)
    assert "Traceback" not in log


@pytest.mark.parametrize(
    "msisdn",
    ["13412345678\n", "١٣٤١٢٣٤٥٦٧٨", "13412345678 ", " 13412345678", "１３４１２３４５６７８"],
)
def test_only_an_ascii_eleven_digit_string_is_a_number(server, keys, msisdn):
    """Probe 8: a trailing newline, other scripts' digits, padding."""
    r = httpx.post(
        f"{server.url}/score", json={"msisdn": msisdn}, headers={"X-API-Key": keys["group"]}, timeout=30
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid_msisdn", r.text


def test_a_province_key_learns_nothing_about_other_provinces(server, keys, customers):
    """Probe 8: another province's subscriber looks exactly like a number that is no one's,
    and /models shows the key's own province only."""
    theirs = httpx.post(
        f"{server.url}/score", json={"msisdn": customers["HE"]}, headers={"X-API-Key": keys["GD"]}, timeout=30
    )
    nobody = httpx.post(
        f"{server.url}/score", json={"msisdn": "19999999999"}, headers={"X-API-Key": keys["GD"]}, timeout=30
    )
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json()["error"] == nobody.json()["error"] == "unknown_customer"
    batch = httpx.post(
        f"{server.url}/score_batch",
        json={"msisdns": [customers["HE"], "19999999999"]},
        headers={"X-API-Key": keys["GD"]},
        timeout=30,
    ).json()["results"]
    assert [(x["status"], x["error"]) for x in batch] == [(404, "unknown_customer")] * 2
    models = httpx.post(f"{server.url}/models", json={}, headers={"X-API-Key": keys["GD"]}, timeout=30)
    assert set(models.json()["provinces"]) <= {"GD"}


def test_an_unauthenticated_flood_of_the_internal_endpoint_is_refused_at_the_door(server, keys, customers):
    """Probe 8: forged /score_items calls are 404 before any parsing or batching, and a
    real caller's answer time barely moves while 2,000 of them arrive."""
    forged = {"items": [{"msisdn": customers["GD"], "scope": "*", "grant": "0" * 64}] * 50}
    headers = {"X-API-Key": keys["group"]}

    def real_call_ms() -> float:
        started = time.perf_counter()
        assert httpx.post(f"{server.url}/score", json={"msisdn": customers["GD"]}, headers=headers).is_success
        return 1000 * (time.perf_counter() - started)

    quiet = sorted(real_call_ms() for _ in range(20))[10]
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        statuses = {client.post("/score_items", json=forged).status_code for _ in range(2_000)}
    flood_seconds = time.perf_counter() - started
    assert statuses == {404}
    assert flood_seconds < 30  # refused at the door: a few ms each at most
    for token in (b"guess", b"\xff\xfe non-ascii", b""):  # a crafted token is a 404 too, never a 500
        r = httpx.post(f"{server.url}/score_items", json=forged, headers={"x-telcoml-internal": token})
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert sorted(real_call_ms() for _ in range(20))[10] < max(3 * quiet, quiet + 50)
