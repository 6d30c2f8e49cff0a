#!/usr/bin/env python
"""One task's final fit, local ``xgb.train`` against ``xgboost.spark`` on the same rows (issue 20).

A fresh synthetic world (or ``--workdir``) gives the task's split as ``train_task`` makes it; both
fits take the same parameters (XGBoost's defaults, ``eta`` 0.1, depth 4), early-stopped on the
validation part, and each is judged on the test part (customers neither was fitted on):
seconds, peak resident memory, the held-out headline metric. The Spark session's start is timed
apart (a cluster's is paid once per job). Memory is sampled every 0.1 s: the Python driver
alone, and the driver with its child processes (Spark's JVM and, in local mode, the executors'
Python workers). Usage::

    python benchmarks/bench_spark_training.py [--customers 20000] [--months 6] [--task churn]
        [--master local[2]] [--workers 2] [--workdir DIR]

Prints a table and ends with one line of ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without an editable install too
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks.common import environment, generated_world  # noqa: E402

MIB = 1024 * 1024


class PeakMemory:
    """The largest resident memory seen while the block runs: this process, and with its children."""

    def __init__(self, every: float = 0.1):
        self.every, self.driver, self.tree = every, 0, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            own = me.memory_info().rss
            children = 0
            for child in me.children(recursive=True):
                try:
                    children += child.memory_info().rss
                except psutil.Error:  # a worker that ended between the listing and the reading
                    pass
            self.driver, self.tree = max(self.driver, own), max(self.tree, own + children)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--provinces", default="GD,SC")
    parser.add_argument("--task", default="churn")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--workers", type=int, default=2, help="XGBoost workers (Spark tasks)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the local fit")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from core.settings import Settings
    from core.spark import spark_session
    from core.tasks import task
    from features.build import available_months, available_provinces, build_indicators
    from features.store import apply_repository
    from training import distributed, evaluate
    from training.data import choose_split, label_months, load_labels, make_dataset
    from training.model import finalize
    from training.tune import XGBOOST_DEFAULTS, TuningBudget, base_params, fit, matrices

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-spark-training-"))
    s = Settings(workdir=workdir, engine="spark", spark_master=args.master, spark_num_workers=args.workers)
    provinces = tuple(args.provinces.split(","))
    print(f"world: {args.customers:,} customers, {args.months} months, {provinces}, workdir {workdir}")
    generated_world(s, args.customers, args.months, provinces)
    if not s.offline_dir.exists():
        found = available_provinces(s.raw_dir)
        build_indicators(s.raw_dir, s.offline_dir, found, available_months(s.raw_dir, found[0]))
        apply_repository(s)

    t = task(args.task)
    data = make_dataset(s, t, choose_split(label_months(load_labels(s), t), 3))
    rows = {k: len(v) for k, v in data.y.items()}
    budget = TuningBudget(max_rounds=600, early_stopping_rounds=30, seed=7, threads=args.threads)
    params = {**base_params(t, budget.seed, budget.threads), **XGBOOST_DEFAULTS, "eta": 0.1, "max_depth": 4}
    test = data.frames["test"][t.feature_names]

    with PeakMemory() as local_memory:
        started = time.perf_counter()
        booster = fit(params, *matrices(data), budget)
        local_s = time.perf_counter() - started
    local = finalize(t, booster, data, int(booster.best_iteration))
    metric_local = evaluate.metrics(t, data.y["test"], local.probabilities(test))[t.headline]

    started = time.perf_counter()
    spark = spark_session(s)
    session_start = time.perf_counter() - started
    parts = [(data.X["train"], data.y["train"], False), (data.X["valid"], data.y["valid"], True)]
    with PeakMemory() as spark_memory:
        started = time.perf_counter()
        frame = distributed.pandas_rows(spark, parts, budget.seed)  # the same rows, handed to Spark
        spread_booster = distributed.fit_distributed(
            s, t, params, budget.max_rounds, frame, budget.early_stopping_rounds
        )
        spark_s = time.perf_counter() - started
    spread = finalize(t, spread_booster, data, int(spread_booster.attr("best_iteration")))
    metric_spark = evaluate.metrics(t, data.y["test"], spread.probabilities(test))[t.headline]
    spark.stop()

    env = environment(("pyspark", "xgboost"))
    h = t.headline
    print(f"machine: {env.get('cpus')} CPUs, load average {os.getloadavg()[0]:.1f} at the end (shared)")
    print(
        f"Spark {env.get('pyspark')} master {args.master}, {args.workers} workers; XGBoost {env.get('xgboost')}"
    )
    print(f"{t.name}: rows " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    print(f"session start {session_start:.1f}s (not in the fit's seconds)")
    print(
        f"{'fit':<16}{'seconds':>9}{'rounds':>8}{'driver MiB':>12}{'with children MiB':>19}{'held-out ' + h:>24}"
    )
    for name, secs, b, memory, metric in (
        ("local xgb.train", local_s, booster, local_memory, metric_local),
        ("xgboost.spark", spark_s, spread_booster, spark_memory, metric_spark),
    ):
        rounds = int(b.attr("best_iteration")) + 1
        print(
            f"{name:<16}{secs:>9.1f}{rounds:>8}{memory.driver / MIB:>12.0f}"
            f"{memory.tree / MIB:>19.0f}{metric:>24.4f}"
        )
    print(
        f"customers={args.customers} task={t.name} rows_train={rows['train']} master={args.master} "
        f"workers={args.workers} session_start_s={session_start:.1f} local_s={local_s:.2f} "
        f"spark_s={spark_s:.2f} ratio={spark_s / local_s:.1f} "
        f"local_peak_rss_mib={local_memory.driver / MIB:.0f} spark_driver_peak_rss_mib={spark_memory.driver / MIB:.0f} "
        f"spark_tree_peak_rss_mib={spark_memory.tree / MIB:.0f} "
        f"{h}_local={metric_local:.4f} {h}_spark={metric_spark:.4f} load_avg={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
