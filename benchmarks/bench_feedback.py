"""Feedback ingestion rate: events per second from a CRM file, and over HTTP in batches of 500.

    python benchmarks/bench_feedback.py [--events 20000] [--workdir TRAINED_WORKDIR] [--store-url URL]

The file part needs nothing; the HTTP part starts the service on a trained work directory
(``telcoml demo`` or a test session's) with the feedback store pointed at a fresh SQLite file
(or ``--store-url``), and sends ``--events`` events in batches of 500, one client, then four.
Then, on one server in one run, ``/score``'s latency alone and while a client keeps sending
feedback batches (the interference: p50 and p99, and their ratio). Prints the figures, then
one line of key=value.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from features.feedback import EVENTS, FeedbackStore, ingest_feedback_files  # noqa: E402

CHANNELS = ("online_hall", "hotline_10086", "sms_hall", "business_hall", "outbound")


def events(n: int, prefix: str) -> list[dict]:
    """``n`` campaign contacts and list changes, as the CRM sends them."""
    out = []
    for i in range(n):
        common = {"event_id": f"{prefix}-{i}", "province": "GD", "msisdn": f"138{i:08d}"}
        if i % 4 == 3:
            out.append(
                {"type": "list_change", "time": "2026-06-05T09:00:00", "list_type": "red", "action": "add"}
                | common
            )
        else:
            out.append(
                {"type": "campaign_contact", "time": "2026-06-03T10:00:00+08:00", "campaign_id": "roam"}
                | {"wave": 1 + i % 3, "channel": CHANNELS[i % 5], "outcome": "accepted"}
                | common
            )
    return out


def from_file(n: int, store_url: str, tmp: Path, prefix: str) -> float:
    path = tmp / "crm-feedback.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events(n, prefix)))
    started = time.perf_counter()
    [result] = ingest_feedback_files(store_url, [path])
    elapsed = time.perf_counter() - started
    assert result["stored"] == n, result
    return n / elapsed


def over_http(n: int, workdir: Path, store_url: str, clients: int, prefix: str) -> float:
    import httpx

    from core.settings import Settings
    from serving.security import create_key
    from tests.servers import Server

    key = create_key(Settings(workdir=workdir), "bench.feedback", "GD")
    batches = [events(n, prefix)[i : i + 500] for i in range(0, n, 500)]
    server = Server(workdir, env={"TELCOML_FEEDBACK_STORE_URL": store_url})
    try:
        with httpx.Client(timeout=60, headers={"X-API-Key": key}) as client:

            def send(batch):
                r = client.post(f"{server.url}/feedback", json={"events": batch})
                assert r.status_code == 200 and r.json()["stored"] == len(batch), r.text[:300]

            send(events(1, f"{prefix}-warm"))
            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(send, batches))
            return n / (time.perf_counter() - started)
    finally:
        server.stop()


def customers(workdir: Path, n: int) -> list[str]:
    """Guangdong customers of the latest snapshot (known to the online store)."""
    import pandas as pd

    latest = sorted((workdir / "offline" / "profile").glob("GD_*.parquet"))[-1]
    return pd.read_parquet(latest, columns=["msisdn"])["msisdn"].astype(str).head(n).tolist()


def score_interference(workdir: Path, store_url: str, requests: int, prefix: str) -> dict:
    """``/score`` latency (ms) alone, then while another client sends feedback batches of 500
    without pause, on the same server in the same run."""
    import threading

    import httpx
    import numpy as np

    from core.settings import Settings
    from serving.security import create_key
    from tests.servers import Server

    key = create_key(Settings(workdir=workdir), "bench.interference", "GD")
    numbers = customers(workdir, 200)
    server = Server(workdir, env={"TELCOML_FEEDBACK_STORE_URL": store_url})
    stop = threading.Event()
    sent = [0]

    def feed() -> None:
        with httpx.Client(timeout=60, headers={"X-API-Key": key}) as client:
            k = 0
            while not stop.is_set():
                batch = events(500, f"{prefix}-load-{k}")
                r = client.post(f"{server.url}/feedback", json={"events": batch})
                assert r.status_code == 200, r.text[:300]
                sent[0] += len(batch)
                k += 1

    def latencies(client: httpx.Client) -> np.ndarray:
        out = []
        for i in range(requests):
            started = time.perf_counter()
            r = client.post(f"{server.url}/score", json={"msisdn": numbers[i % len(numbers)]})
            out.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, r.text[:300]
        return np.array(out)

    try:
        with httpx.Client(timeout=60, headers={"X-API-Key": key}) as client:
            latencies(client)  # warm-up
            alone = latencies(client)
            loader = threading.Thread(target=feed, daemon=True)
            started = time.perf_counter()
            loader.start()
            loaded = latencies(client)
            stop.set()
            loader.join()
            rate = sent[0] / (time.perf_counter() - started)
    finally:
        server.stop()
    figures = {
        "score_p50_ms_alone": round(float(np.percentile(alone, 50)), 2),
        "score_p99_ms_alone": round(float(np.percentile(alone, 99)), 2),
        "score_p50_ms_with_feedback": round(float(np.percentile(loaded, 50)), 2),
        "score_p99_ms_with_feedback": round(float(np.percentile(loaded, 99)), 2),
        "feedback_events_per_s_meanwhile": round(rate),
    }
    figures["p99_ratio"] = round(figures["score_p99_ms_with_feedback"] / figures["score_p99_ms_alone"], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, help="a trained work directory (for the HTTP part)")
    parser.add_argument("--store-url", help="the feedback store (default: a fresh SQLite file)")
    parser.add_argument("--score-requests", type=int, default=1000, help="/score calls alone and under load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite:///{Path(tmp) / 'feedback.db'}"
        store = FeedbackStore(url)
        figures = {"events": args.events, "store": store.engine.dialect.name}
        run = f"bench-{int(time.time())}"  # this run's event ids, removed at the end
        figures["file_events_per_s"] = round(from_file(args.events, url, Path(tmp), f"{run}-file"))
        print(f"file (JSONL, one transaction): {figures['file_events_per_s']} events/s", flush=True)
        if args.workdir:
            for clients in (1, 4):
                rate = over_http(args.events, args.workdir, url, clients, f"{run}-http{clients}")
                figures[f"http_{clients}_clients_events_per_s"] = round(rate)
                print(f"HTTP, batches of 500, {clients} client(s): {round(rate)} events/s", flush=True)
            interference = score_interference(args.workdir, url, args.score_requests, f"{run}-mix")
            figures.update(interference)
            print(
                f"/score alone p50 {interference['score_p50_ms_alone']} ms, p99 {interference['score_p99_ms_alone']}"
                f" ms; with feedback load p50 {interference['score_p50_ms_with_feedback']} ms, p99 "
                f"{interference['score_p99_ms_with_feedback']} ms "
                f"({interference['feedback_events_per_s_meanwhile']} events/s meanwhile)",
                flush=True,
            )
        with store.engine.begin() as conn:
            conn.execute(sa.delete(EVENTS).where(EVENTS.c.event_id.like(f"{run}-%")))
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
