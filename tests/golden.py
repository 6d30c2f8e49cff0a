"""What the platform answers on a fixed small world: live and prepared ``/score`` answers, the
CRM file and the weekly report, captured so a restructuring can prove it changed none of them.

``python -m tests.golden write`` rebuilds the world and rewrites ``tests/golden/answers.json``;
do that only when a change is *meant* to change answers (the generator, training, wording),
and say so in the commit. ``tests/model/test_same_answers.py`` compares against the file.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import pandas as pd

GOLDEN = Path(__file__).parent / "golden" / "answers.json"
#: Fields that say when or where something ran, not what was answered.
VOLATILE = {"answered_from", "prepared_at", "loaded_at", "scored_at"}
CUSTOMERS_PER_PROVINCE = 15


def _clean(value):
    """JSON-comparable: volatile fields dropped, floats as they are (NaN as None)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def capture(workdir: Path) -> dict:
    """Build the model world of tests/conftest.py in ``workdir``, train, serve, batch-score, monitor."""
    from core.tasks import TASKS
    from monitoring.weekly import monitor_week
    from serving.answers import score_frame
    from serving.batch import replay_month, score_province
    from serving.champions import load_champions
    from serving.online import OnlineFeatures
    from serving.prepared import PreparedAnswers, prepare_answers, unpack
    from tests.conftest import MODEL_WORLD, build_world
    from training.train import train_task
    from training.tune import TuningBudget

    world = build_world(workdir, MODEL_WORLD)
    budget = TuningBudget(trials=3, max_rounds=200, seed=3, threads=1)
    for name in TASKS:
        train_task(world.settings, name, budget=budget, train_months=3)
    latest = world.months[-1]
    current = world.labels[world.labels["month"] == latest]
    msisdns = [
        m
        for p in ("GD", "HE")
        for m in current.loc[current["province"] == p, "msisdn"].head(CUSTOMERS_PER_PROVINCE)
    ]

    champions = load_champions(world.settings)
    features = OnlineFeatures(world.settings).fetch(msisdns)
    live = {}
    for province in ("GD", "HE"):
        rows = [k for k, p in enumerate(features["province"]) if p == province]
        answered = score_frame(champions.for_province(province), features.take(rows))
        live.update({msisdns[k]: a for k, a in zip(rows, answered)})

    prepare_answers(world.settings, champions)
    found = PreparedAnswers(world.settings).lookup(msisdns)
    prepared = {m: unpack(hit.answer) for m, hit in zip(msisdns, found) if hit is not None}

    crm = score_province(world.settings, champions, "GD", output_dir=workdir / "crm", record=False)
    crm_rows = pd.read_parquet(crm.parquet).drop(columns=["scored_at"]).head(60)

    week = replay_month(world.settings, world.months[-2])
    report = monitor_week(world.settings, week)
    table = report.table()
    return _clean(
        {
            "live": live,
            "prepared": prepared,
            "crm_columns": list(pd.read_parquet(crm.parquet).columns),
            "crm": crm_rows.to_dict("records"),
            "weekly": {
                "week": week,
                "table": table.to_dict("records"),
                "alerts": [{k: a[k] for k in ("province", "task", "breaches")} for a in report.alerts],
            },
        }
    )


def main() -> None:
    if sys.argv[1:] != ["write"]:
        raise SystemExit("usage: python -m tests.golden write")
    with tempfile.TemporaryDirectory() as tmp:
        data = capture(Path(tmp) / "work")
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
