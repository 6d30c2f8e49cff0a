#!/usr/bin/env python
"""Monitoring benchmark: one weekly report, 1M reference rows against 200k current rows.

Side by side in one run, each in a fresh subprocess (so peak memory is its own):

* ``evidently``: Evidently alone — ``Report([DataDriftPreset(columns), ValueDrift(prediction)])``
  on the same frames, HTML saved. The baseline.
* ``drift``: ``monitoring.drift.drift_report`` (the same Evidently report with fixed
  distance methods, plus the summary: drifted share, moved indicators and how much),
  HTML saved.
* ``week``: what the weekly job adds per province and task: ``drift`` plus the
  four-dimension data-quality report on the current rows, both HTMLs saved.

The frames are the credit grade model's 15 indicators (kinds and ranges from the
indicator library), a prediction column and 30% of the indicators shifted in the
current rows. Prints a table, writes JSON to ``benchmarks/results/monitoring-<date>.json``
and ends with one line of ``key=value`` pairs. Usage::

    python benchmarks/bench_monitoring.py [--reference-rows 1000000] [--current-rows 200000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, environment  # noqa: E402

TASK = "credit_grade"


def frames(rows: int, shifted: bool, seed: int):
    import numpy as np
    import pandas as pd

    from core import indicators as lib
    from core.tasks import TASKS

    rng = np.random.default_rng(seed)
    columns = {}
    chosen = lib.for_task(TASK)
    moved = {i.id for i in chosen[::3]} if shifted else set()
    for i in chosen:
        if i.kind == "category":
            p = np.ones(len(i.codes)) / len(i.codes)
            if i.id in moved:
                p = np.roll(np.linspace(1, 3, len(i.codes)), 1)
                p = p / p.sum()
            columns[i.id] = rng.choice(np.array(i.codes, dtype=object), rows, p=p)
        else:
            low, high = i.valid_range or (0, 100)
            scale = min(high - low, 100.0) / 4
            values = rng.gamma(2.0, scale / 2.0, rows) * (1.5 if i.id in moved else 1.0)
            columns[i.id] = np.clip(low + values, low, high).round(0 if i.kind == "int" else 2)
    frame = pd.DataFrame(columns)
    frame[TASKS[TASK].prediction_column] = rng.choice(
        [1, 2, 3, 4, 5], rows, p=[0.05, 0.15, 0.4, 0.3, 0.1] if shifted else [0.1, 0.2, 0.4, 0.2, 0.1]
    )
    frame["province"] = "GD"
    return frame


def run_variant(variant: str, reference_rows: int, current_rows: int) -> dict:
    """Measure one variant in this process: seconds for the report(s), peak RSS."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    from core import indicators as lib
    from core.tasks import TASKS
    from monitoring.data_quality import quality_report
    from monitoring.drift import Thresholds, drift_report

    reference, current = frames(reference_rows, False, 1), frames(current_rows, True, 2)
    indicators = [i.id for i in lib.for_task(TASK)]
    out = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    if variant == "evidently":
        cats = [i.id for i in lib.for_task(TASK) if i.kind == "category"] + [TASKS[TASK].prediction_column]
        definition = DataDefinition(
            numerical_columns=[c for c in indicators if c not in cats], categorical_columns=cats
        )
        snapshot = Report(
            [DataDriftPreset(columns=indicators), ValueDrift(column=TASKS[TASK].prediction_column)]
        ).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        snapshot.save_html(str(out / "evidently.html"))
        drifted = None
    else:
        snapshot, summary = drift_report(
            reference,
            current,
            TASK,
            indicators,
            Thresholds(),
            False,
            province="GD",
            week="2026-W45",
            model="bench",
            version="1",
        )
        snapshot.save_html(str(out / "drift.html"))
        drifted = summary.drifted_features
        if variant == "week":
            records = current.assign(
                customer_key=[f"k{i}" for i in range(len(current))],
                scored_at=pd.Timestamp("2026-11-02", tz="UTC"),
                features_as_of=pd.Timestamp("2026-10-31 23:59:59", tz="UTC"),
            )
            q_snapshot, _ = quality_report(records, "GD", "2026-W45")
            q_snapshot.save_html(str(out / "quality.html"))
    seconds = time.perf_counter() - started
    return {
        "variant": variant,
        "seconds": round(seconds, 2),
        "drifted_features": drifted,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--current-rows", type=int, default=200_000)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child process
        print(json.dumps(run_variant(args.variant, args.reference_rows, args.current_rows)))
        return
    results = {}
    for variant in ("evidently", "drift", "week"):
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--variant",
                variant,
                "--reference-rows",
                str(args.reference_rows),
                "--current-rows",
                str(args.current_rows),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if child.returncode != 0:
            raise SystemExit(f"{variant} failed:\n{child.stderr[-3000:]}")
        results[variant] = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{variant:<10} {results[variant]['seconds']:>8.1f} s  peak {results[variant]['peak_rss_mib']:>8.0f} MiB"
            f"  drifted={results[variant]['drifted_features']}",
            flush=True,
        )
    import os

    record = {
        "reference_rows": args.reference_rows,
        "current_rows": args.current_rows,
        "results": results,
        "load_average": os.getloadavg(),
        "environment": environment(("evidently", "pandas", "numpy")),
    }
    path = ROOT / "benchmarks" / "results" / f"monitoring-{date.today()}.json"
    path.write_text(json.dumps(record, indent=2))
    e, d, w = results["evidently"], results["drift"], results["week"]
    print(
        f"evidently_s={e['seconds']} drift_s={d['seconds']} week_s={w['seconds']} "
        f"drift_time_ratio={d['seconds'] / e['seconds']:.2f} week_time_ratio={w['seconds'] / e['seconds']:.2f} "
        f"evidently_peak_mib={e['peak_rss_mib']:.0f} week_peak_mib={w['peak_rss_mib']:.0f} "
        f"week_memory_ratio={w['peak_rss_mib'] / e['peak_rss_mib']:.2f}"
    )


if __name__ == "__main__":
    main()
