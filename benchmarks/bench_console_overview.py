"""The console's managers' overview at 1M customers: time of each drill level beside reading and
grouping the raw frame once.

    python benchmarks/bench_console_overview.py --workdir TRAINED_WORKDIR [--province GD] [--customers 1000000]

Grades the province's latest month as the page does (``overview.graded_customers``: the offline
store's snapshot scored by the champions, the subscriber master's city), replicates those decisions
to ``--customers`` rows, and times ``overview.current_views`` (everything the page computes from the
graded frames: grade and churn band overview, the analysis tables, region comparison and its plotly
figure, a 6-month trend and its figures, the ad-hoc count) at each drill level:

* national: the 1M province beside the other provinces' real frames, by province;
* province: the 1M province by customer category;
* city: its largest city by brand;
* dimension: the province by city, with an ad-hoc query;

and the CSV export at the province level. Baselines: one ``groupby`` of the 1M frame by city and
grade, and reading the same frame from Parquet then grouping it. Median of ``--repeats`` runs
each. The graded frames are in the page's memory after the first visit, so these are its response
times less the HTML (the first visit of a province-month also grades it: ``grade_s`` below, at the
province's real size). Prints one line of key=value last.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.settings import Settings  # noqa: E402
from features.build import offline_snapshots  # noqa: E402
from serving.champions import load_champions  # noqa: E402
from serving.console import overview  # noqa: E402


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--province", default="GD")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trend-months", type=int, default=6)
    args = parser.parse_args()

    settings = Settings(workdir=args.workdir)
    backend = types.SimpleNamespace(settings=settings, models=load_champions(settings))
    pairs = offline_snapshots(settings.offline_dir)
    month = max(m for p, m in pairs if p == args.province)
    others = sorted({p for p, m in pairs if m == month and p != args.province})

    started = time.perf_counter()
    real = overview.graded_customers(backend, args.province, month)
    grade_s = time.perf_counter() - started
    big = real.iloc[np.resize(np.arange(len(real)), args.customers)].reset_index(drop=True)
    national = pd.concat(
        [big, *(overview.graded_customers(backend, p, month) for p in others)], ignore_index=True
    )
    city = big["city"].value_counts().idxmax()
    history = {f"m{i}": big for i in range(args.trend_months)}
    national_history = {f"m{i}": national for i in range(args.trend_months)}
    query = {"credit_grade": "1", "brand": "easyown"}
    none = {}

    levels = {
        "national": lambda: overview.current_views(national, national_history, "*", "province", none),
        "province": lambda: overview.current_views(big, history, args.province, "customer_category", none),
        "city": lambda: overview.current_views(big, history, city, "brand", none),
        "dimension": lambda: overview.current_views(big, history, args.province, "city", query),
        "export": lambda: overview.rows_csv(overview.export_rows(big, "city", query)),
    }
    results = {f"{name}_s": timed(fn, args.repeats) for name, fn in levels.items()}
    results["baseline_group_s"] = timed(lambda: big.groupby(["city", "credit_grade"]).size(), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decisions.parquet"
        big.to_parquet(path)
        results["baseline_read_group_s"] = timed(
            lambda: pd.read_parquet(path).groupby(["city", "credit_grade"]).size(), args.repeats
        )
    print(
        f"{args.province} {month}: {len(real):,} graded customers replicated to {len(big):,} "
        f"(national {len(national):,} with {', '.join(others) or 'no other province'}); city {city}"
    )
    for name, seconds in results.items():
        print(f"  {name:24s} {seconds:8.3f} s")
    fields = {
        "customers": len(big),
        "national_customers": len(national),
        "real_customers": len(real),
        "grade_s": round(grade_s, 3),
        **{k: round(v, 3) for k, v in results.items()},
    }
    print(" ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
