"""The hardening issue's HTTP probes, against this checkout's server and a baseline's, side by side.

Both servers serve the same trained work directory (``telcoml demo``'s), each from its
own code root: this checkout, and ``--baseline-root`` (a clone of an earlier commit, e.g.
``git clone -q . /tmp/before && git -C /tmp/before checkout 37ac06f``). For each probe it
prints what the issue asks to be measured: cases tried, 5xx seen, full numbers leaked
(answers, ``/metrics`` and the server log), ``/metrics`` size and the server's resident
memory before and after each flood. The last line is ``key=value`` pairs (this checkout,
then the baseline's, and their ratio where one makes sense).

    .venv/bin/python benchmarks/bench_abuse.py --workdir telcoml-work --baseline-root /tmp/before
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import environment  # noqa: E402
from tests.servers import Server  # noqa: E402

NUMBER = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
PROBE_NUMBERS = ["13800138000", "13912345678", "15011112222", "18633334444"]


def chunked(url: str, path: str, headers: dict, total: int) -> tuple[int, int]:
    """A chunked body of ``total`` bytes; the status and size of the answer."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Transfer-Encoding: chunked"]
    sock.sendall(("\r\n".join(lines + [f"{k}: {v}" for k, v in headers.items()]) + "\r\n\r\n").encode())
    piece = b'{"msisdns": ["' + b"1" * 65536
    sent = 0
    try:
        while sent < total:
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
        sock.sendall(b'"]}\r\n0\r\n\r\n')
    except OSError:
        pass
    answer = b""
    try:
        while chunk := sock.recv(1 << 20):
            answer += chunk
            if len(answer) > 64 << 20:
                break
    except OSError:
        pass
    sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, len(answer)


def probe(server: Server, key: str, customer: str, paths: int) -> dict:
    out: dict = {}
    h = {"X-API-Key": key}
    statuses: list[int] = []
    leaked: list[str] = []
    with httpx.Client(base_url=server.url, timeout=60) as c:
        # 1. path flood
        before = c.get("/metrics").content
        rss0 = server.rss() / 2**20
        rng = random.Random(7)
        for i in range(paths):
            path = f"/{PROBE_NUMBERS[i % 4]}" if i < 4 else f"/x{rng.getrandbits(64):x}"
            statuses.append(c.get(path).status_code)
        started = time.perf_counter()
        after = c.get("/metrics").content
        out["metrics_scrape_s"] = round(time.perf_counter() - started, 3)
        out["metrics_kb_before"], out["metrics_kb_after"] = len(before) // 1024, len(after) // 1024
        out["rss_mb_path_flood"] = round(server.rss() / 2**20 - rss0, 1)
        leaked += NUMBER.findall(after.decode(errors="replace"))
        # 2. chunked bodies, with and without a key
        rss0 = server.rss() / 2**20
        status, size = chunked(
            server.url, "/score_batch", {**h, "Content-Type": "application/json"}, 30 << 20
        )
        out["chunked_30mb_status"], out["chunked_30mb_answer_kb"] = status, size // 1024
        status, _ = chunked(server.url, "/score", {"Content-Type": "application/json"}, 200 << 20)
        out["chunked_200mb_nokey_status"] = status
        out["rss_mb_chunked"] = round(server.rss() / 2**20 - rss0, 1)
        statuses += [out["chunked_30mb_status"], status]
        # 3. malformed requests
        malformed = (
            [("/score", {"msisdn": int(n)}) for n in PROBE_NUMBERS]
            + [("/score", {"msisdn": [n]}) for n in PROBE_NUMBERS]
            + [("/score", {"msisdn": n + "\n"}) for n in PROBE_NUMBERS]
            + [("/score", {"msisdn": customer, "reasons": n}) for n in PROBE_NUMBERS]
            + [("/score_batch", {"msisdns": n}) for n in PROBE_NUMBERS]
        )
        shapes = set()
        for path, body in malformed:
            r = c.post(path, json=body, headers=h)
            statuses.append(r.status_code)
            leaked += [n for n in PROBE_NUMBERS if n in r.text]
            try:
                shapes.add(tuple(sorted(r.json())) if isinstance(r.json(), dict) else "not an object")
            except ValueError:
                shapes.add("not JSON")
        for raw in ('{"msisdn": "13912345678"', "not json", "[]"):
            r = c.post("/score", content=raw, headers={**h, "Content-Type": "application/json"})
            statuses.append(r.status_code)
            leaked += [n for n in PROBE_NUMBERS if n in r.text]
        out["malformed_cases"] = len(malformed) + 3
        out["error_shapes"] = len(shapes)
        # 4. forged internal calls
        forged = {"items": [{"msisdn": customer, "scope": "*", "grant": "0" * 64}] * 50}
        started = time.perf_counter()
        forged_statuses = {c.post("/score_items", json=forged).status_code for _ in range(500)}
        out["forged_500_s"] = round(time.perf_counter() - started, 2)
        out["forged_statuses"] = sorted(forged_statuses)
    time.sleep(1)
    server.log.flush()
    log = Path(server.log.name).read_text(errors="replace")
    out["log_tracebacks"] = log.count("Traceback")
    leaked += [n for n in PROBE_NUMBERS if n in log]
    out["cases"] = len(statuses) + 500
    out["server_errors"] = sum(s >= 500 for s in statuses)
    out["numbers_leaked"] = len(leaked)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("telcoml-work"))
    parser.add_argument("--baseline-root", type=Path, required=True)
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks" / "results" / f"abuse-{time.strftime('%Y-%m-%d')}.json",
    )
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    sys.path.insert(0, str(ROOT))
    from core.settings import Settings
    from serving.security import create_key

    settings = Settings(workdir=workdir)
    key = create_key(settings, "bench-abuse")
    offline = sorted((workdir / "offline" / "profile").glob("*.parquet"))[-1]
    import pandas as pd

    customer = str(pd.read_parquet(offline, columns=["msisdn"])["msisdn"].iloc[0])
    results = {}
    for name, root in (("this", ROOT), ("baseline", args.baseline_root.resolve())):
        server = Server(workdir, {"TELCOML_PREPARED_ANSWERS": "0"}, code_root=root)
        try:
            results[name] = probe(server, key, customer, args.paths)
        finally:
            server.stop()
        print(name, json.dumps(results[name]), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"environment": environment(("bentoml",)), **results}, indent=2))
    this, base = results["this"], results["baseline"]
    pairs = {
        f"{k}": f"{this[k]}/{base[k]}"
        for k in (
            "cases",
            "server_errors",
            "numbers_leaked",
            "log_tracebacks",
            "metrics_kb_after",
            "rss_mb_path_flood",
            "rss_mb_chunked",
            "chunked_30mb_status",
            "chunked_30mb_answer_kb",
            "error_shapes",
        )
    }
    pairs["metrics_growth_ratio"] = round(
        (base["metrics_kb_after"] - base["metrics_kb_before"] + 1)
        / (this["metrics_kb_after"] - this["metrics_kb_before"] + 1),
        1,
    )
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))


if __name__ == "__main__":
    main()
