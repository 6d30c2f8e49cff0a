#!/usr/bin/env python
"""``telcoml prepare`` on the embedded path and the Spark path side by side: one work directory,
one online store, the same champions, the same province, the two paths alternating.

``bench_scale.py`` measures each path on a world of its own (the embedded one with SQLite);
here only the engine differs (``TELCOML_ENGINE=pandas`` or ``spark``), so the per-core ratio is
the engine's, whatever the champions cost. Each run is the CLI in a child process, timed as
``bench_scale.run_stage`` times it (wall, CPU of the process tree, peak memory of the tree and
of the CLI alone). Results go to ``--output`` (JSON); the last line is ``key=value`` pairs:
each path's median rows per CPU-second and the Spark path's over the embedded path's.

Usage::

    python benchmarks/bench_prepare_paths.py --workdir W --province HE [--rounds 2] \\
        [--online-store redis --project P] [--tracking-uri URI]

``W`` is a work directory with its snapshot materialized and champions registered (for
instance a ``bench_scale.py --keep`` Spark world: ``--online-store redis --project
scale_spark_250000``; ``--tracking-uri`` when the champions are in another work directory's
registry).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_scale import province_customers, run_stage  # noqa: E402
from benchmarks.common import environment  # noqa: E402

PATHS = {"embedded": {"TELCOML_ENGINE": "pandas"}, "spark": {"TELCOML_ENGINE": "spark"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--province", required=True, type=str.upper)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--online-store", default=None, help="default: the work directory's settings")
    parser.add_argument("--project", default=None, help="the Feast project (a bench_scale world's own)")
    parser.add_argument("--redis-url", default=os.environ.get("TELCOML_REDIS_URL", "127.0.0.1:6379"))
    parser.add_argument("--tracking-uri", default=None, help="the registry holding the champions")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    base = {
        **os.environ,
        "TELCOML_WORKDIR": str(args.workdir),
        "TELCOML_AUTO_PREPARE": "0",
        "TELCOML_SPARK_MASTER": args.master,
        "TELCOML_REDIS_URL": args.redis_url,
        "TQDM_DISABLE": "1",
        "TERM": "dumb",
        "CI": "true",
    }
    for key, value in (
        ("TELCOML_ONLINE_STORE", args.online_store),
        ("TELCOML_PROJECT", args.project),
        ("TELCOML_MLFLOW_TRACKING_URI", args.tracking_uri),
    ):
        if value:
            base[key] = value
    rows = province_customers(args.workdir, args.province)
    cli = str(Path(sys.executable).with_name("telcoml"))
    output = (
        args.output or ROOT / "benchmarks" / "results" / f"prepare-paths-{datetime.now(UTC):%Y-%m-%d}.json"
    )
    measures: list[dict] = []
    for r in range(args.rounds):
        # alternate which path goes first, so a change in the machine's load hits both alike
        for path in list(PATHS) if r % 2 == 0 else list(reversed(PATHS)):
            wall, cpu, peak, driver = run_stage(
                [cli, "prepare", "--province", args.province.lower()],
                {**base, **PATHS[path]},
                args.workdir.parent / f"prepare-paths-{path}.log",
            )
            m = {
                "path": path,
                "round": r,
                "rows": rows,
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_mib": peak,
                "driver_peak_mib": driver,
                "rows_per_cpu_s": rows / cpu,
                "load_1min": os.getloadavg()[0],
            }
            measures.append(m)
            print(
                f"{path:>8} round {r}: {wall:7.1f} s  cpu {cpu:7.1f} s  peak {peak:6.0f} MiB "
                f"(driver {driver:5.0f})  {m['rows_per_cpu_s']:6.1f} rows/cpu-s  load {m['load_1min']:.1f}",
                flush=True,
            )
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(
                json.dumps(
                    {
                        "environment": environment(("pyspark", "xgboost", "feast")),
                        "arguments": {k: str(v) for k, v in vars(args).items()},
                        "results": measures,
                    },
                    indent=1,
                )
            )
    rate = {p: statistics.median(m["rows_per_cpu_s"] for m in measures if m["path"] == p) for p in PATHS}
    print(
        f"province={args.province} rows={rows} embedded_rows_per_cpu_s={rate['embedded']:.1f} "
        f"spark_rows_per_cpu_s={rate['spark']:.1f} per_core_spark_over_embedded={rate['spark'] / rate['embedded']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
