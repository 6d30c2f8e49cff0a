#!/usr/bin/env python
"""The streaming generator: time and peak memory of ``generate`` at two sizes, each province
whole (``chunk_customers=None``) and in chunks (``--chunk``, default 50,000 first lines).

Each run is its own process (``--child``), so its peak RSS (VmHWM) is its own. Memory in
chunks should stay near one chunk's whatever the size; whole provinces grow with the largest
province. Prints a table, writes JSON to ``benchmarks/results/generate-stream-<date>.json``
and ends with one line of ``key=value`` pairs. Usage::

    python benchmarks/bench_generate_stream.py [--sizes 100000,400000] [--chunk 50000] [--months 12]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mib() -> float:
    """High-water RSS of this process (VmHWM: its own address space; ``ru_maxrss`` would carry
    the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(customers: int, chunk: int | None, months: int, seed: int) -> dict:
    from features.generate import GeneratorConfig, generate

    config = GeneratorConfig(customers=customers, months=months, seed=seed, chunk_customers=chunk)
    base = _peak_mib()
    with tempfile.TemporaryDirectory(prefix="bench-generate-stream-") as folder:
        t0 = time.perf_counter()
        counts = generate(config, Path(folder) / "raw", Path(folder) / "truth")
        seconds = time.perf_counter() - t0
    sizes = config.province_sizes().values()
    return {
        "customers": customers,
        "chunk_customers": chunk,
        "chunks_largest_province": len(config.chunk_sizes(max(sizes))),
        # what memory follows: the most first lines simulated at once, in any province
        "largest_chunk": max(max(config.chunk_sizes(s)) for s in sizes),
        "seconds": round(seconds, 1),
        "raw_rows": sum(counts.values()),
        "customer_months": counts["usage"],
        "base_mib": round(base, 1),
        "peak_mib": round(_peak_mib(), 1),
    }


def _run(customers: int, chunk: int | None, months: int, seed: int) -> dict:
    args = [sys.executable, __file__, "--child", str(customers), str(chunk), str(months), str(seed)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _label(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,400000", help="customers, comma-separated")
    ap.add_argument("--chunk", type=int, default=50_000, help="chunk_customers of the chunked runs")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--output", default=None, help="JSON path")
    ap.add_argument(
        "--child", nargs=4, metavar=("CUSTOMERS", "CHUNK", "MONTHS", "SEED"), help=argparse.SUPPRESS
    )
    a = ap.parse_args(argv)
    if a.child:
        customers, chunk, months, seed = a.child
        result = child(int(customers), None if chunk == "None" else int(chunk), int(months), int(seed))
        print(json.dumps(result))
        return 0

    from benchmarks.common import environment

    sizes = [int(s) for s in a.sizes.split(",")]
    started = datetime.now(UTC)
    runs = []
    for size in sizes:
        for chunk in (None, a.chunk):
            r = _run(size, chunk, a.months, a.seed)
            runs.append(r)
            print(
                f"{_label(size):>6} {'whole' if chunk is None else f'chunk {chunk:,}':>13} "
                f"largest chunk {r['largest_chunk']:>7,} {r['seconds']:>7.1f}s "
                f"peak {r['peak_mib']:>7.0f} MiB (base {r['base_mib']:.0f})",
                flush=True,
            )
    path = (
        Path(a.output)
        if a.output
        else ROOT / "benchmarks" / "results" / f"generate-stream-{started.date().isoformat()}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "started": started.isoformat(timespec="seconds"),
        "config": {"sizes": sizes, "chunk": a.chunk, "months": a.months, "seed": a.seed, "provinces": 4},
        "runs": runs,
        "environment": environment(("numpy", "pandas", "pyarrow")),
    }
    path.write_text(json.dumps(results, indent=2))
    pairs = [f"chunk={a.chunk}", f"months={a.months}"]
    for r in runs:
        mode = "whole" if r["chunk_customers"] is None else "chunked"
        pairs += [
            f"gen_s_{_label(r['customers'])}_{mode}={r['seconds']:.1f}",
            f"peak_mib_{_label(r['customers'])}_{mode}={r['peak_mib']:.0f}",
        ]
    print(" ".join(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
