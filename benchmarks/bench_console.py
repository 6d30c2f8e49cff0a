"""The console's customer view: time to first render for one customer, server side and in the browser,
beside ``/score`` for the same customers.

    python benchmarks/bench_console.py --workdir TRAINED_WORKDIR [--customers 30]

Starts the BentoML service on a trained work directory (``telcoml demo`` or a test session's), which
mounts the console, signs in with a group key made for the run, and for each of ``--customers``
customers of the latest snapshot (each looked up once, after three warm-up lookups):
``/score`` over HTTP (one client, wall time), the console's server time for the customer view
(``Server-Timing: app``: lookup, scoring, view, HTML), and in headless Chromium the search form
submitted to the view's first contentful paint (``performance``'s paint entry of the new page).
Prints medians and 95th percentiles, then one line of key=value.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import pandas as pd  # noqa: E402

from core.settings import Settings  # noqa: E402
from serving.security import create_key, revoke_key  # noqa: E402
from tests.servers import Server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
#: The new page's first contentful paint since the form was submitted (its navigation's start); a
#: page Chromium painted without the entry falls back to the end of its load event.
FIRST_PAINT = """() => new Promise(resolve => {
  new PerformanceObserver(list => {
    const e = list.getEntriesByName('first-contentful-paint')[0];
    if (e) resolve(e.startTime);
  }).observe({type: 'paint', buffered: true});
  setTimeout(() => resolve(-performance.getEntriesByType('navigation')[0].loadEventEnd), 2000);
})"""


def customers(settings: Settings, n: int) -> list[str]:
    """``n`` customers of the latest month's profile snapshot, spread over the provinces."""
    latest = sorted((settings.offline_dir / "profile").glob("*.parquet"), key=lambda p: p.stem.split("_")[-1])
    month = latest[-1].stem.split("_")[-1]
    frames = [pd.read_parquet(p, columns=["msisdn"]) for p in latest if p.stem.endswith(month)]
    numbers = pd.concat(frames)["msisdn"].astype(str)
    return numbers.sample(n=min(n, len(numbers)), random_state=7).tolist()


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=30)
    args = parser.parse_args()
    settings = Settings(workdir=args.workdir)
    key = create_key(settings, "bench.console")
    numbers = customers(settings, args.customers + 3)
    server = Server(args.workdir)
    score_ms, server_ms, browser_ms = [], [], []
    fallbacks = 0
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p, httpx.Client(timeout=30) as client:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{server.url}/console/")
            page.fill("#key", key)
            page.click("#sign-in")
            page.wait_for_selector("#msisdn")
            for k, msisdn in enumerate(numbers):
                started = time.perf_counter()
                response = client.post(
                    f"{server.url}/score", json={"msisdn": msisdn}, headers={"X-API-Key": key}
                )
                scored = 1000 * (time.perf_counter() - started)
                assert response.status_code == 200, response.text
                page.fill("#msisdn", msisdn)
                with page.expect_response(lambda r: r.url.endswith("/console/customer")) as answered:
                    page.click("#look-up")
                page.wait_for_selector("#grade")
                timing = answered.value.headers.get("server-timing", "")
                paint = page.evaluate(FIRST_PAINT)
                if k < 3:  # warm-up: first lookups load code paths and caches
                    continue
                score_ms.append(scored)
                server_ms.append(float(timing.split("dur=")[1]))
                if paint < 0:
                    fallbacks += 1
                browser_ms.append(abs(float(paint)))
            browser.close()
    finally:
        server.stop()
        revoke_key(settings, "bench.console")
    rows = {
        "/score (HTTP, wall)": score_ms,
        "console view, server": server_ms,
        "console view, browser FCP": browser_ms,
    }
    print(f"{len(score_ms)} customers, one lookup each, one worker ({args.workdir})")
    print(
        f"  (first contentful paint: {len(browser_ms) - fallbacks}; load event end where Chromium gave none: {fallbacks})"
    )
    for name, values in rows.items():
        p50, p95 = quantiles(values)
        print(f"  {name:28s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    (s50, s95), (c50, c95), (b50, b95) = (quantiles(v) for v in rows.values())
    print(
        f"customers={len(score_ms)} score_p50_ms={s50:.1f} score_p95_ms={s95:.1f} console_server_p50_ms={c50:.1f} "
        f"console_server_p95_ms={c95:.1f} console_browser_fcp_p50_ms={b50:.1f} console_browser_fcp_p95_ms={b95:.1f}"
    )


if __name__ == "__main__":
    main()
