#!/usr/bin/env python
"""Project a large province's nightly run on a cluster from ``bench_scale.py``'s measurements.

Reads results files of ``benchmarks/bench_scale.py`` and, per stage of the Spark path, fits
``CPU seconds = fixed + per_row * n`` over the measured sizes (least squares), so the
per-row cost is the marginal one, not diluted by the session's start. The projection for
``--subscribers`` on ``--cores`` cores is

    wall = fixed + per_row * N / (cores * efficiency)

(``fixed``: the fit's intercept, the CPU seconds that do not grow with the rows, over the local
cores; zero when a stage was measured at one size only; every subscriber of the projected
province is scored and prepared)

with ``--efficiency`` the share of a core a cluster delivers to the job (shuffles, stragglers,
a busy cluster: an assumption, stated in the output). Memory per executor core is the Spark
path's largest measured peak of the whole local process tree divided by its cores (flat in
size if the path is bounded). Prints a Markdown table (for ``docs/scale.md``) and a last
line of ``key=value`` pairs.

Usage::

    python benchmarks/scale_projection.py benchmarks/results/scale-2026-11-30*.json \\
        [--remeasured FILE] [--subscribers 50000000] [--cores 400] [--efficiency 0.6] [--local-cores 2]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

NIGHTLY = ("build", "materialize", "batch-score", "prepare")
STAGE_WORDS = {
    "generate": "synthetic world (tests only)",
    "build": "indicators (every snapshot of 6 months: an upper bound for one)",
    "materialize": "online store (Redis)",
    "train": "training, one task (monthly)",
    "batch-score": "CRM file",
    "prepare": "prepared answers",
}


def linear_fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of y = a + b * x by least squares; one point: (0, y / x)."""
    if len({x for x, _ in points}) < 2:
        x, y = points[-1]
        return 0.0, y / x
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - slope * mx, slope


def project(results: list[dict], stage: str, args: argparse.Namespace) -> dict | None:
    rows = [r for r in results if r["path"] == "spark" and r["stage"] == stage and r["ok"]]
    if not rows:
        return None
    rows.sort(key=lambda r: r["size"])
    # the projected province is one province: every subscriber is scored and prepared
    n = args.subscribers
    fixed_cpu, cpu_per_row = linear_fit([(r["rows"], r["cpu_s"]) for r in rows])
    cpu_per_row = max(cpu_per_row, rows[-1]["cpu_s"] / rows[-1]["rows"] / 4)  # a noisy fit never below 1/4
    # what does not grow with the rows (session, imports, champions), spread over the local cores
    fixed_wall = max(fixed_cpu, 0.0) / args.local_cores
    core_seconds = cpu_per_row * n
    wall = fixed_wall + core_seconds / (args.cores * args.efficiency)
    return {
        "stage": stage,
        "rows": n,
        "rows_per_cpu_s": 1 / cpu_per_row,
        "core_hours": core_seconds / 3600,
        "fixed_wall_s": fixed_wall,
        "wall_min": wall / 60,
        "peak_gib_per_core": max(r["peak_mib"] for r in rows) / 1024 / args.local_cores,
        "measured_sizes": [r["size"] for r in rows],
    }


def measured_table(results: list[dict]) -> None:
    """The measurements side by side: per stage and size, each path's seconds, CPU seconds, peak
    memory and rows per CPU-second, and the Spark path's per-core throughput over the embedded's."""
    sizes = sorted({r["size"] for r in results})
    print(
        "| stage | size | embedded s (CPU s) | embedded peak | Spark s (CPU s) | Spark peak | "
        "rows per CPU-s, embedded / Spark | per core, Spark / embedded |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for stage in STAGE_WORDS:
        for size in sizes:
            got = {r["path"]: r for r in results if r["stage"] == stage and r["size"] == size and r["ok"]}
            if not got:
                continue
            cells = []
            for path in ("embedded", "spark"):
                r = got.get(path)
                cells += (
                    [f"{r['wall_s']:,.0f} ({r['cpu_s']:,.0f})", f"{r['peak_mib'] / 1024:.1f} GiB"]
                    if r
                    else ["not run", ""]
                )
            rates = " / ".join(
                f"{got[p]['rows_per_cpu_s']:,.0f}" if p in got else "-" for p in ("embedded", "spark")
            )
            ratio = (
                f"{got['spark']['rows_per_cpu_s'] / got['embedded']['rows_per_cpu_s']:.2f}"
                if len(got) == 2
                else "-"
            )
            print(f"| {stage} | {size:,} | {' | '.join(cells)} | {rates} | {ratio} |")
    print()


def merge_results(files: list[list[dict]], remeasured: list[list[dict]] = ()) -> list[dict]:
    """Measures of several results files, in order: a later measure of a (stage, path, size)
    replaces an earlier one. Then each ``remeasured`` file's measures of a (stage, path)
    replace every earlier one of them, whatever the size."""
    merged: dict[tuple, dict] = {}
    for results in files:
        for r in results:
            merged[(r["stage"], r["path"], r["size"])] = r
    for results in remeasured:
        again = {(r["stage"], r["path"]) for r in results}
        merged = {k: r for k, r in merged.items() if k[:2] not in again}
        for r in results:
            merged[(r["stage"], r["path"], r["size"])] = r
    return list(merged.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "results",
        type=Path,
        nargs="+",
        help="results files of bench_scale.py, merged in order: a later file's measure of a stage, "
        "path and size replaces an earlier one's (a re-measured stage after a change)",
    )
    parser.add_argument("--subscribers", type=float, default=50e6)
    parser.add_argument("--cores", type=int, default=400)
    parser.add_argument("--efficiency", type=float, default=0.6)
    parser.add_argument("--local-cores", type=int, default=2, help="cores of the measured local[N] runs")
    parser.add_argument(
        "--remeasured",
        type=Path,
        action="append",
        default=[],
        help="a results file whose stages were measured again (the stage's code or the machine "
        "changed): its measures of a stage and path replace every earlier one, at any size",
    )
    args = parser.parse_args(argv)
    results = merge_results(
        [json.loads(path.read_text())["results"] for path in args.results],
        [json.loads(path.read_text())["results"] for path in args.remeasured],
    )
    measured_table(results)
    stages = [p for s in STAGE_WORDS if (p := project(results, s, args))]
    if not stages:
        print("no Spark-path stage measured in", *args.results)
        return 1
    print(
        f"Projection for {args.subscribers / 1e6:.0f}M subscribers on {args.cores} cores at "
        f"{args.efficiency:.0%} efficiency, from the Spark path's marginal CPU seconds per row "
        f"(sizes {', '.join(f'{s:,}' for s in stages[0]['measured_sizes'])}):\n"
    )
    print("| stage | rows | rows per core-second | core-hours | fixed s | wall min | peak GiB per core |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p in stages:
        print(
            f"| {STAGE_WORDS[p['stage']]} | {p['rows'] / 1e6:.1f}M | {p['rows_per_cpu_s']:,.0f} | "
            f"{p['core_hours']:,.1f} | {p['fixed_wall_s']:.0f} | {p['wall_min']:,.1f} | "
            f"{p['peak_gib_per_core']:.2f} |"
        )
    nightly = [p for p in stages if p["stage"] in NIGHTLY]
    wall = sum(p["wall_min"] for p in nightly)
    memory = max(p["peak_gib_per_core"] for p in stages)
    print(
        f"\nnightly ({', '.join(p['stage'] for p in nightly)}): {wall:.0f} min wall, "
        f"{sum(p['core_hours'] for p in nightly):,.0f} core-hours; executors with "
        f"{math.ceil(memory * 4)} GiB per 4 cores"
    )
    print(
        f"subscribers={args.subscribers:.0f} cores={args.cores} efficiency={args.efficiency} "
        f"nightly_wall_min={wall:.0f} nightly_core_hours={sum(p['core_hours'] for p in nightly):.1f} "
        f"peak_gib_per_core={memory:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
