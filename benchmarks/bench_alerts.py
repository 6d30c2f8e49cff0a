#!/usr/bin/env python
"""Can the weekly alerts be trusted? False alarms on quiet weeks, detection on the drift week.

For each size and seed, a steady world of four provinces (Guangdong, Sichuan, Hebei,
Zhejiang: different mixes, Hebei and Zhejiang small) is generated from 2026-01: two
training months, a validation month, the champions' test month (2026-04), ``--quiet``
quiet months, then the month the market changes (the drift switch: a tariff change and a
competitor's offer, in every province). Every model is trained with a small budget; each
month after the test month is replayed into the week it went live and monitored.

* **false-alarm rate**: alerts in quiet weeks over province × task × quiet week;
* **detection rate**: drift-week alerts over the province × task pairs the drift really
  moves. A pair is moved when its *truth* moves: the oracle's output (expected grade,
  expected sensitivity, churn probability, most likely channel) between the last quiet
  month and the drift month differs by a normed Wasserstein (Jensen-Shannon for the
  channel) of at least ``--moved``. Measured on the truth, not on what monitoring sees;
* **named**: share of detected alerts naming an indicator the tariff change moves.

Side by side, from the same reports: the **distance-only rule** (the weekly job before
issue 18: an indicator drifted at distance >= 0.1 whatever the week's size, prediction
drift at 0.15, a quality drop at 5% of the score without an interval). It is computed on
the same province references, so it understates the old rule's false alarms (which also
compared small provinces with the national mix).

Usage::

    python benchmarks/bench_alerts.py [--sizes 5000,20000] [--seeds 1,2] [--quiet 2] [--workdir W]

Prints a table per world and ends with one line of ``key=value`` pairs:
``false_alarm_rate=… detection_rate=…`` then the same for the distance-only rule.
Goal (issue 18): false alarms <= 5% at every size, detection >= 95% at 20k and above.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.common import ROOT, environment  # noqa: E402

PROVINCES = ("GD", "SC", "HE", "ZJ")
START, TEST_MONTH = "2026-01", "2026-04"
#: What the tariff change moves (features/generate.py): bills and billing inquiries.
MOVED_INDICATORS = {"billing_inquiry_count_3m", "bill_change_ratio", "monthly_consumption", "arpu_3m"}


def oracle_output(oracle: pd.DataFrame, task: str) -> pd.Series:
    """The truth's own answer per customer, in the task's terms."""
    if task == "credit_grade":
        return sum(k * oracle[f"p_credit_grade_{k}"] for k in range(1, 6))
    if task in ("tariff_sensitivity", "complaint_sensitivity"):
        return oracle[f"{task}_expected"]
    if task == "churn":
        return oracle["churn_probability"]
    channels = [c for c in oracle.columns if c.startswith("p_channel_")]
    return oracle[channels].idxmax(axis=1)


def truth_moved(truth_dir: Path, province: str, before: str, after: str, task: str) -> float:
    """How far the drift month's truth is from the quiet month's, for one province and task."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    oracle = pd.read_parquet(truth_dir / "oracle" / f"{province}.parquet")
    a = oracle_output(oracle[oracle["month"] == before], task)
    b = oracle_output(oracle[oracle["month"] == after], task)
    if task == "channel_preference":
        sa, sb = a.value_counts(normalize=True), b.value_counts(normalize=True)
        keys = sorted(set(sa.index) | set(sb.index))
        return float(jensenshannon(sa.reindex(keys, fill_value=0), sb.reindex(keys, fill_value=0)))
    return float(wasserstein_distance(a, b) / (a.std() or 1.0))


def distance_only(d, quality_drop: float = 0.05) -> bool:
    """The rule before issue 18, on the same report: distances alone, no sample size."""
    drifted = sum(s >= 0.1 for s in d.feature_scores.values())
    prediction = d.prediction_drift_score
    return (
        drifted / max(d.features, 1) >= 0.3
        or (np.isfinite(prediction) and prediction >= 0.15)
        or (d.quality_drop is not None and d.quality_drop >= quality_drop)
    )


def one_world(workdir: Path, customers: int, seed: int, quiet: int, trials: int, moved_at: float) -> dict:
    from core.io import month_list
    from core.settings import Settings
    from core.tasks import TASKS
    from features.build import available_months, available_provinces, build_indicators
    from features.generate import GeneratorConfig, generate
    from features.store import apply_repository, materialize_latest
    from monitoring.weekly import monitor_week
    from serving.batch import replay_month
    from training.train import train_task
    from training.tune import TuningBudget

    months = month_list(START, 4 + quiet + 1)
    quiet_months, drift_month = months[4:-1], months[-1]
    config = GeneratorConfig(
        customers=customers, months=len(months), start_month=START, provinces=PROVINCES, seed=seed,
        drift_month=drift_month,
    )  # fmt: skip
    if workdir.exists():
        shutil.rmtree(workdir)
    s = Settings(workdir=workdir)
    clock = time.perf_counter()
    generate(config, s.raw_dir, s.truth_dir)
    have = available_months(s.raw_dir, PROVINCES[0])
    build_indicators(s.raw_dir, s.offline_dir, available_provinces(s.raw_dir), have)
    materialize_latest(apply_repository(s), have[-1])
    built = time.perf_counter() - clock
    budget = TuningBudget(trials=trials, max_rounds=200, seed=seed, threads=2)
    for name in TASKS:
        train_task(s, name, budget=budget, train_months=2, test_month=TEST_MONTH)
    trained = time.perf_counter() - clock - built

    rows = []
    for month in [*quiet_months, drift_month]:
        week = replay_month(s, month)
        result = monitor_week(s, week, log_to_mlflow=False)
        alerted = {(a["province"], a["task"]): a for a in result.alerts}
        for d in result.drift:
            alert = alerted.get((d.province, d.task))
            moved = (
                truth_moved(s.truth_dir, d.province, quiet_months[-1], drift_month, d.task)
                if month == drift_month
                else None
            )
            rows.append(
                {
                    "size": customers,
                    "seed": seed,
                    "month": month,
                    "week": week,
                    "kind": "drift" if month == drift_month else "quiet",
                    "province": d.province,
                    "task": d.task,
                    "customers": d.rows_current,
                    "reference_rows": d.rows_reference,
                    "alert": alert is not None,
                    "checks": ",".join(b["check"] for b in alert["breaches"]) if alert else "",
                    "named": bool(
                        alert and {m["indicator"] for m in alert["moved_indicators"]} & MOVED_INDICATORS
                    ),
                    "distance_only": distance_only(d),
                    "truth_moved": moved,
                    "moved": moved is not None and moved >= moved_at,
                    "drifted": f"{d.drifted_features}/{d.features}",
                    "quality_drop": d.quality_drop,
                }
            )
    monitored = time.perf_counter() - clock - built - trained
    return {"rows": rows, "seconds": {"build": built, "train": trained, "monitor": monitored}}


def rates(frame: pd.DataFrame, column: str) -> tuple[float, float]:
    quiet = frame[frame["kind"] == "quiet"]
    moved = frame[(frame["kind"] == "drift") & frame["moved"]]
    false_alarms = float(quiet[column].mean()) if len(quiet) else float("nan")
    detection = float(moved[column].mean()) if len(moved) else float("nan")
    return false_alarms, detection


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="5000,20000", help="customers per world, comma-separated")
    ap.add_argument("--seeds", default="1,2", help="seeds per size, comma-separated")
    ap.add_argument("--quiet", type=int, default=2, help="quiet months between the test month and the drift")
    ap.add_argument("--trials", type=int, default=2, help="Optuna trials per model (a small budget)")
    ap.add_argument("--moved", type=float, default=0.1, help="truth distance from which a pair is 'moved'")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/telcoml-bench-alerts"))
    ap.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / f"alerts-{date.today()}.json"
    )
    args = ap.parse_args(argv)

    sizes = [int(x) for x in args.sizes.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    rows, timings = [], {}
    for size in sizes:
        for seed in seeds:
            print(f"world: {size:,} customers, seed {seed} ...", flush=True)
            out = one_world(
                args.workdir / f"n{size}-s{seed}", size, seed, args.quiet, args.trials, args.moved
            )
            rows += out["rows"]
            timings[f"{size}-{seed}"] = {k: round(v, 1) for k, v in out["seconds"].items()}
            frame = pd.DataFrame(out["rows"])
            view = frame.pivot_table(
                index=["province", "task"], columns="kind", values="alert", aggfunc="sum"
            )
            print(view.to_string(), flush=True)
            print(f"  seconds: {timings[f'{size}-{seed}']}", flush=True)
    frame = pd.DataFrame(rows)

    print(
        "\nsize     quiet pairs  false alarms  moved pairs  detected  named   | distance-only: false  detected"
    )
    summary = {}
    for size, part in frame.groupby("size"):
        fa, det = rates(part, "alert")
        fa0, det0 = rates(part, "distance_only")
        moved = part[(part["kind"] == "drift") & part["moved"]]
        detected = moved[moved["alert"]]
        named = float(detected["named"].mean()) if len(detected) else float("nan")
        summary[int(size)] = {
            "false_alarm_rate": fa, "detection_rate": det, "named_rate": named,
            "baseline_false_alarm_rate": fa0, "baseline_detection_rate": det0,
            "quiet_pairs": int((part["kind"] == "quiet").sum()), "moved_pairs": len(moved),
        }  # fmt: skip
        print(
            f"{size:>7,}  {summary[int(size)]['quiet_pairs']:>11}  {fa:>12.1%}  {len(moved):>11}  {det:>8.1%}  "
            f"{named:>5.0%}   | {fa0:>20.1%}  {det0:>8.1%}"
        )
    not_moved = frame[(frame["kind"] == "drift") & ~frame["moved"]]
    print(
        f"drift-week pairs the truth did not move: {len(not_moved)} ({', '.join(sorted(set(not_moved['task'])))})"
    )
    fa, det = rates(frame, "alert")
    fa0, det0 = rates(frame, "distance_only")
    large = frame[frame["size"] >= 20_000]
    det_large = rates(large, "alert")[1] if len(large) else float("nan")
    fa_max = max(v["false_alarm_rate"] for v in summary.values())
    goal = bool(fa_max <= 0.05 and (not len(large) or det_large >= 0.95))

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "environment": environment(("evidently", "xgboost", "optuna")),
                "arguments": {k: str(v) for k, v in vars(args).items()},
                "summary": summary,
                "timings": timings,
                "rows": rows,
            },
            indent=1,
            default=str,
        )
    )
    print(f"results: {args.output}")
    print(
        f"false_alarm_rate={fa:.3f} detection_rate={det:.3f} max_false_alarm_rate_by_size={fa_max:.3f} "
        f"detection_rate_20k_up={det_large:.3f} baseline_false_alarm_rate={fa0:.3f} "
        f"baseline_detection_rate={det0:.3f} goal={'pass' if goal else 'fail'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
