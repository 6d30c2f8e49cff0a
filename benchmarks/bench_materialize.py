#!/usr/bin/env python
"""Peak memory of materializing the latest snapshot into Redis: Feast's materialize against
the streaming one (``TELCOML_MATERIALIZE=stream``, ``features/stream_materialize.py``).

Per size: a world generated and built once (``--months`` months, ``--provinces``), then each
way of materializing the 5 indicator views in its own spawned process (its peak RSS is its
own: VmHWM), into Redis under a Feast project of its own (removed after). ``base_mib`` is
the process after importing the stack and applying the repository, ``peak_mib`` its high-water
mark, ``extra_mib`` the difference: what materializing cost. Checks every customer of a
sample is online afterwards. Prints a table, writes ``benchmarks/results/materialize-<date>.json``
and ends with one line of ``key=value`` pairs. Usage::

    python benchmarks/bench_materialize.py [--sizes 50000,200000] [--workdir DIR] [--redis-url HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import environment  # noqa: E402

WAYS = ("feast", "stream")


def _peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def stage_world(workdir: str, customers: int, months: int, provinces: tuple[str, ...]) -> dict:
    """Generate and build a world (kept: a second run reuses it)."""
    from core.settings import Settings
    from features.build import available_months, build_indicators
    from features.generate import GeneratorConfig, generate

    s = Settings(workdir=Path(workdir))
    if not (s.offline_dir / "profile").exists():
        config = GeneratorConfig(
            customers=customers, months=months, start_month="2026-01", provinces=provinces, drift_month=None
        )
        t0 = time.perf_counter()
        generate(config, s.raw_dir, s.truth_dir)
        found = available_months(s.raw_dir, provinces[0])
        build_indicators(s.raw_dir, s.offline_dir, list(provinces), found)
        print(f"  world of {customers:,} built in {time.perf_counter() - t0:.0f}s", flush=True)
    return {}


def stage_materialize(workdir: str, way: str, redis_url: str) -> dict:
    """Materialize the latest month's 5 views into Redis under a project of its own."""
    import pyarrow.parquet as pq

    from core import indicators as lib
    from core.settings import Settings
    from features.build import offline_snapshots
    from features.store import apply_repository, materialize_latest

    data = Settings(workdir=Path(workdir))
    project = f"bm{uuid.uuid4().hex[:8]}"
    own = Path(workdir) / f"redis-{way}"
    own.mkdir(exist_ok=True)
    if not (own / "offline").exists():
        (own / "offline").symlink_to(data.offline_dir)
    s = Settings(workdir=own, online_store="redis", redis_url=redis_url, project=project)
    month = max(m for _, m in offline_snapshots(data.offline_dir))
    customers = [
        m
        for f in sorted(data.offline_dir.glob(f"profile/*_{month}.parquet"))
        for m in pq.read_table(f, columns=["msisdn"]).column("msisdn").to_pylist()
    ]
    store = apply_repository(s)
    try:
        base = _rss_mib()
        t0 = time.perf_counter()
        materialize_latest(store, month, views=list(lib.SUBJECTS), how=way)
        seconds = time.perf_counter() - t0
        peak = _peak_mib()
        sample = customers[:: max(1, len(customers) // 500)]
        online = store.get_online_features(
            features=["profile:province", "usage:data_mb"], entity_rows=[{"msisdn": m} for m in sample]
        ).to_dict()
        assert all(p is not None for p in online["province"]), "a customer of the snapshot is not online"
    finally:
        store.teardown()
    rows = len(customers) * len(lib.SUBJECTS)
    return {
        "way": way,
        "month": month,
        "customers": len(customers),
        "rows": rows,
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
        "base_mib": round(base, 1),
        "peak_mib": round(peak, 1),
        "extra_mib": round(peak - base, 1),
    }


def _child(stage: str, kwargs: dict) -> dict:
    os.environ.setdefault("TQDM_DISABLE", "1")
    import warnings

    warnings.filterwarnings("ignore")
    import features.store  # noqa: F401  (the baseline includes the whole stack)

    return globals()[stage](**kwargs)


def run_stage(stage: str, **kwargs) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_child, stage, kwargs).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--months", type=int, default=2)
    parser.add_argument("--provinces", default="GD,SC")
    parser.add_argument("--workdir", default="/tmp/telcoml-bench-materialize")
    parser.add_argument("--redis-url", default=os.environ.get("TELCOML_REDIS_URL", "127.0.0.1:6379"))
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    provinces = tuple(args.provinces.split(","))

    results = []
    for size in sizes:
        workdir = Path(args.workdir) / f"c{size}"
        run_stage(
            "stage_world", workdir=str(workdir), customers=size, months=args.months, provinces=provinces
        )
        for way in WAYS:
            out = run_stage("stage_materialize", workdir=str(workdir), way=way, redis_url=args.redis_url)
            out["size"] = size
            results.append(out)
            print(
                f"  {size:>9,} {way:<6} {out['customers']:>9,} customers  {out['seconds']:>7.1f}s "
                f"{out['rows_per_s']:>8,} rows/s  base {out['base_mib']:>7.1f} MiB  "
                f"peak {out['peak_mib']:>7.1f} MiB  extra {out['extra_mib']:>7.1f} MiB",
                flush=True,
            )

    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    path = ROOT / "benchmarks" / "results" / f"materialize-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    env = environment(("feast", "pyarrow", "redis"))
    path.write_text(json.dumps({"environment": env, "results": results}, indent=2))
    print(f"  results: {path}")
    print(
        " ".join(
            f"{r['way']}_{r['customers']}_{k}={r[k]}"
            for r in results
            for k in ("seconds", "peak_mib", "extra_mib")
        )
    )


if __name__ == "__main__":
    main()
