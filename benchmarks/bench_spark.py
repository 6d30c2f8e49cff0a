#!/usr/bin/env python
"""The production profile against the embedded path, side by side in one run (issue 20):

1. the indicator build: ``build_indicators`` (pandas, one process) and ``build_indicators_spark``
   (Spark local mode) on the same raw tables, customer-months per second, and whether every
   offline file is equal value for value (the build's own time stamp aside);
2. batch scoring of one province: ``score_province`` (pandas, chunks) and ``score_province_spark``
   (``mapInArrow``, champions loaded once per partition), customers per second, and whether the
   rows are equal.

The Spark session's start is timed apart (a cluster's is paid once per job). Champions are
trained first with a token budget (not timed). Usage::

    python benchmarks/bench_spark.py [--customers 10000] [--months 6] [--master local[2]] [--workdir DIR]

Prints a table and ends with one line of ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without an editable install too
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from benchmarks.common import environment, generated_world  # noqa: E402


def _same_offline_files(left: Path, right: Path) -> bool:
    from core import indicators as lib

    files = sorted(p.relative_to(left) for s in lib.SUBJECTS for p in (left / s).glob("*.parquet"))
    for relative in files:
        # the Spark build writes a snapshot's rows bucket by bucket: compared customer by customer
        a, b = (
            pd.read_parquet(side / relative)
            .drop(columns="created_timestamp")
            .sort_values("msisdn", ignore_index=True)
            for side in (left, right)
        )
        if not a.equals(b):
            return False
    return bool(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--provinces", default="GD,SC")
    parser.add_argument("--province", default="GD", help="the province batch-scored")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from core.settings import Settings
    from core.spark import spark_session
    from core.tasks import TASKS
    from features.build import available_months, available_provinces, build_indicators
    from features.spark_build import build_indicators_spark
    from features.store import apply_repository, materialize_latest
    from serving.batch import score_province
    from serving.champions import load_champions
    from serving.spark_batch import partition_dir, score_province_spark
    from training.train import train_task
    from training.tune import TuningBudget

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-spark-"))
    s = Settings(workdir=workdir, spark_master=args.master)
    provinces = tuple(args.provinces.split(","))
    print(f"world: {args.customers:,} customers, {args.months} months, {provinces}, workdir {workdir}")
    generated_world(s, args.customers, args.months, provinces)
    found = available_provinces(s.raw_dir)
    months = available_months(s.raw_dir, found[0])

    started = time.perf_counter()
    rows = build_indicators(s.raw_dir, s.offline_dir, found, months)
    pandas_build = time.perf_counter() - started

    started = time.perf_counter()
    spark = spark_session(s)
    session_start = time.perf_counter() - started
    spark_offline = workdir / "offline_spark"
    started = time.perf_counter()
    spark_rows = build_indicators_spark(spark, s.raw_dir, spark_offline, found, months)
    spark_build = time.perf_counter() - started
    build_equal = spark_rows == rows and _same_offline_files(s.offline_dir, spark_offline)

    if not (s.workdir / "mlflow.db").exists():  # champions, trained with a token budget (not timed)
        materialize_latest(apply_repository(s), months[-1])
        budget = TuningBudget(trials=1, max_rounds=100, seed=3, threads=2)
        for name in TASKS:
            train_task(s, name, budget=budget, train_months=3)

    started = time.perf_counter()
    models = load_champions(s)  # as batch_score_stage does (one XGBoost thread per model)
    pandas_scored = score_province(s, models, args.province, record=False, output_dir=workdir / "crm")
    pandas_score = time.perf_counter() - started
    started = time.perf_counter()
    spark_scored = score_province_spark(
        spark, s, args.province, output_dir=workdir / "crm_spark", record=False
    )
    spark_score = time.perf_counter() - started
    folder = partition_dir(spark_scored.parquet, spark_scored.province, spark_scored.month)
    built = pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))])
    expected = pd.read_parquet(pandas_scored.parquet).drop(columns=["province", "snapshot_month"])
    key = ["msisdn"]
    score_equal = (
        built.drop(columns="scored_at")
        .sort_values(key)
        .reset_index(drop=True)
        .equals(expected.drop(columns="scored_at").sort_values(key).reset_index(drop=True))
    )

    env = environment(("pyspark", "pandas", "pyarrow", "xgboost"))
    print(f"machine: {env.get('cpus')} CPUs, load average {os.getloadavg()[0]:.1f} at the end (shared)")
    print(f"Spark {env.get('pyspark')} master {args.master}; session start {session_start:.1f}s")
    print(f"{'stage':<28}{'rows':>12}{'pandas s':>10}{'Spark s':>10}{'pandas/s':>12}{'Spark/s':>12}  equal")
    print(
        f"{'indicator build':<28}{rows:>12,}{pandas_build:>10.1f}{spark_build:>10.1f}"
        f"{rows / pandas_build:>12,.0f}{spark_rows / spark_build:>12,.0f}  {build_equal}"
    )
    print(
        f"{'batch scoring ' + args.province:<28}{pandas_scored.rows:>12,}{pandas_score:>10.1f}{spark_score:>10.1f}"
        f"{pandas_scored.rows / pandas_score:>12,.0f}{spark_scored.rows / spark_score:>12,.0f}  {score_equal}"
    )
    spark.stop()
    print(
        f"customers={args.customers} months={len(months)} master={args.master} "
        f"session_start_s={session_start:.1f} build_rows={rows} "
        f"build_pandas_rows_per_s={rows / pandas_build:.0f} build_spark_rows_per_s={spark_rows / spark_build:.0f} "
        f"build_equal={build_equal} score_rows={pandas_scored.rows} "
        f"score_pandas_rows_per_s={pandas_scored.rows / pandas_score:.0f} "
        f"score_spark_rows_per_s={spark_scored.rows / spark_score:.0f} score_equal={score_equal} "
        f"load_avg={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
