#!/usr/bin/env python
"""``telcoml prepare``'s rate, the code before and after issue 20 side by side in one run.

Before: the reasons of a multi-class model (the channel preference) came from TreeSHAP over
every class's trees, the told class's row kept. After: a booster of the told class's trees
alone (``TaskModel.serve_told_contributions``). Both prepare the same province's customers
into the same online store, alternating, so a change in machine load hits both alike.
Ends with one line of ``key=value`` pairs. Usage::

    python benchmarks/bench_prepare.py --workdir W [--province ZJ] [--rounds 2]

``W`` is a trained work directory (``telcoml demo --workdir W --customers 5000 --months 6``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _whole_model(self, encoded, p):
    """The code before: TreeSHAP over every class's trees (``Kind.explained`` keeps the told one)."""
    return self.serve_contributions(encoded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--province", default=None)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    from core.settings import Settings
    from serving.champions import load_champions, with_threads
    from serving.prepared import prepare_answers, snapshot_customers
    from training.model import TaskModel

    settings = Settings(workdir=args.workdir)
    province = args.province or next(iter(snapshot_customers(settings)))
    models = with_threads(load_champions(settings), 0)
    told = TaskModel.serve_told_contributions
    rates: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for side in ("before", "after"):
            TaskModel.serve_told_contributions = _whole_model if side == "before" else told
            result = prepare_answers(settings, models, [province])
            rates[side].append(result.answers / result.seconds)
            print(f"{side}: {result.answers:,} answers in {result.seconds:.1f}s ({rates[side][-1]:.1f}/s)")
    TaskModel.serve_told_contributions = told
    before, after = statistics.median(rates["before"]), statistics.median(rates["after"])
    print(
        f"province={province} answers={result.answers} before_per_s={before:.1f} after_per_s={after:.1f} "
        f"speedup={after / before:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
