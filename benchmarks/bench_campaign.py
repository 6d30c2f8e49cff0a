#!/usr/bin/env python
"""Campaigns out and measured (issue 12's "Measure"): targeting against the world's truth, and the
time to select and export a 1M-customer province.

**1. Model-targeted against random**, on a trained work directory (``telcoml demo``): a retention
campaign in one province, every customer the suppression rules allow as the pool. Three
selections of the same size (``--share`` of the pool):

* *model*: the churn champion's highest probabilities, waves on the channel champion's ranking;
* *random*: customers drawn at random, waves in a random channel order;
* *oracle*: the highest true uplift (``features.responses.response_truth``), the ceiling.

For each: the true uplift (the world's closed form: extra customers taking the offer per customer
contacted) and the measured one — the selection split at random into contacted and a
``--control`` share held out, the world's answers simulated (``simulate_responses``, the same
events the CRM sends) and measured by ``serving.campaign_response.measure`` with its 95% interval.
Repeated over ``--seeds``: how often the interval holds the true uplift.

**2. Selection and export at scale**: the province's snapshot repeated to ``--scale`` customers
(new numbers), the campaign planned (champions' decisions, targets, suppression, control group,
waves) and exported (talking points: TreeSHAP reasons of every contacted customer; Parquet and
CSV), beside the baseline of scoring the same rows with the champions alone.

Usage::

    python benchmarks/bench_campaign.py --workdir telcoml-work [--province GD] [--scale 1000000]

Writes ``benchmarks/results/campaign-<date>.json`` (``campaign-scale-<date>.json`` with a scale);
the last line is ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, environment  # noqa: E402
from core.indicators import CHANNELS  # noqa: E402
from core.settings import Settings  # noqa: E402
from features.feedback import parse_events  # noqa: E402
from features.responses import response_truth, simulate_responses, snapshot_oracle  # noqa: E402
from serving.batch import latest_month_for  # noqa: E402
from serving.campaign_config import Campaign  # noqa: E402
from serving.campaign_response import measure  # noqa: E402
from serving.campaign_run import campaign_on  # noqa: E402
from serving.campaigns import wave_plan  # noqa: E402
from serving.champions import load_champions  # noqa: E402
from serving.retention_list import snapshot  # noqa: E402

WAVES = 3


def campaign(province: str, control_share: float) -> Campaign:
    return Campaign.model_validate(
        {
            "name": "bench-keep",
            "purpose": "retention",
            "province": province,
            "start": dt.date(2026, 7, 1),
            "offer": {"en": "Stay with a 20% discount.", "zh": "续约享八折。"},
            "waves": {"max_waves": WAVES, "days_between": 7},
            "control_share": control_share,
        }
    )


def selections(pool: pd.DataFrame, churn: pd.Series, truth_uplift: pd.Series, n: int, rng) -> dict:
    """msisdn and channel ranking of each selection (see the module's text)."""
    shuffled = [",".join(rng.permutation(CHANNELS)) for _ in range(n)]
    random = pool.sample(n, random_state=int(rng.integers(1 << 31)))
    return {
        "model": pool.loc[
            churn.loc[pool.index].nlargest(n).index, ["msisdn", "channel_ranking", "contacts_3m"]
        ],
        "random": random[["msisdn", "contacts_3m"]].assign(channel_ranking=shuffled),
        "oracle": pool.loc[
            truth_uplift.loc[pool.index].nlargest(n).index, ["msisdn", "channel_ranking", "contacts_3m"]
        ],
    }


def with_waves(c: Campaign, chosen: pd.DataFrame) -> pd.DataFrame:
    waves = wave_plan(c, chosen["channel_ranking"])
    return pd.concat([chosen.reset_index(drop=True), waves], axis=1)


def targeting(settings: Settings, province: str, share: float, control: float, seeds: int) -> dict:
    models = load_champions(settings).for_province(province)
    month = latest_month_for(settings, province)
    frame = snapshot(settings, province, month)
    c = campaign(province, 0.0)
    result = campaign_on(models, c, month, frame, set())
    selected = result.plan.selected
    pool = selected[selected["status"] == "contact"].copy()
    churn = pd.Series(models.probabilities(frame)["churn"], index=frame["msisdn"].astype(str).to_numpy())
    pool.index = pool["msisdn"].astype(str)
    oracle = snapshot_oracle(pd.read_parquet(settings.truth_dir / "oracle" / f"{province}.parquet"), month)
    every = response_truth(with_waves(c, pool), oracle, "retention", WAVES)
    truth_uplift = pd.Series(every["uplift"].to_numpy(), index=pool.index)
    n = int(len(pool) * share)
    out: dict = {"province": province, "month": month, "pool": len(pool), "selected": n, "seeds": seeds}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for name, chosen in selections(pool, churn, truth_uplift, n, rng).items():
            planned = with_waves(c, chosen)
            true = float(response_truth(planned, oracle, "retention", WAVES)["uplift"].mean())
            held = rng.random(len(planned)) < control
            contacted, control_group = planned[~held], planned.loc[held, ["msisdn", "contacts_3m"]]
            events = simulate_responses(
                "bench-keep", province, "retention", contacted, control_group, oracle, WAVES, seed
            )
            frame_events = pd.DataFrame([e.model_dump() for e in parse_events(events)])
            m = measure(contacted, control_group, frame_events, dt.date(2026, 12, 31))["overall"]
            row = out.setdefault(name, {"true": [], "measured": [], "low": [], "high": [], "covered": []})
            row["true"].append(true)
            row["measured"].append(m["uplift"])
            row["low"].append(m["low"])
            row["high"].append(m["high"])
            row["covered"].append(bool(m["low"] <= true <= m["high"]))
    for name in ("model", "random", "oracle"):
        row = out[name]
        print(
            f"{name:>7}: true uplift {100 * np.mean(row['true']):.1f} pp, measured "
            f"{100 * np.mean(row['measured']):.1f} pp (mean 95% interval {100 * np.mean(row['low']):.1f} to "
            f"{100 * np.mean(row['high']):.1f}), interval held the truth {sum(row['covered'])}/{seeds}",
            flush=True,
        )
    return out


def at_scale(settings: Settings, province: str, scale: int) -> dict:
    models = load_champions(settings).for_province(province)
    month = latest_month_for(settings, province)
    base = snapshot(settings, province, month)
    copies = -(-scale // len(base))
    frame = pd.concat([base] * copies, ignore_index=True).iloc[:scale]
    frame["msisdn"] = [f"1{30 + i // 10**9 % 70:02d}{i % 10**8:08d}" for i in range(scale)]
    started = time.perf_counter()
    models.probabilities(frame)
    scoring = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = campaign_on(models, campaign(province, 0.1), month, frame, set())
        planned = time.perf_counter() - started
        started = time.perf_counter()
        result = campaign_on(models, campaign(province, 0.1), month, frame, set(), export_to=Path(out))
        exported = time.perf_counter() - started
        size = sum(p.stat().st_size for p in result.files.values())
    figures = {
        "customers": scale,
        "scoring_s": round(scoring, 1),
        "plan_s": round(planned, 1),
        "plan_and_export_s": round(exported, 1),
        "to_contact": result.preview["to_contact"],
        "export_mib": round(size / 2**20, 1),
    }
    print(
        f"{scale:,} customers: scoring alone {scoring:.1f} s; plan and preview {planned:.1f} s; "
        f"plan and export {exported:.1f} s ({result.preview['to_contact']:,} to contact)",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a trained work directory (telcoml demo)")
    parser.add_argument("--province", default="GD")
    parser.add_argument("--share", type=float, default=0.2, help="selection size, share of the pool")
    parser.add_argument("--control", type=float, default=0.2, help="control group share")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--scale", type=int, default=1_000_000, help="customers for the timing (0: skip)")
    args = parser.parse_args()
    settings = Settings(workdir=args.workdir)
    figures = {"targeting": targeting(settings, args.province, args.share, args.control, args.seeds)}
    if args.scale:
        figures["scale"] = at_scale(settings, args.province, args.scale)
    figures["environment"] = environment(("xgboost", "pandas", "statsmodels"))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    name = f"campaign-{dt.date.today()}.json" if not args.scale else f"campaign-scale-{dt.date.today()}.json"
    (results / name).write_text(json.dumps(figures, indent=2, default=str))
    t = figures["targeting"]
    last = {
        "model_uplift_pp": round(100 * np.mean(t["model"]["true"]), 1),
        "random_uplift_pp": round(100 * np.mean(t["random"]["true"]), 1),
        "oracle_uplift_pp": round(100 * np.mean(t["oracle"]["true"]), 1),
        "model_vs_random": round(np.mean(t["model"]["true"]) / np.mean(t["random"]["true"]), 2),
        "coverage": f"{sum(t['model']['covered']) + sum(t['random']['covered'])}/{2 * args.seeds}",
    }
    if args.scale:
        s = figures["scale"]
        last |= {"customers": s["customers"], "scoring_s": s["scoring_s"], "plan_s": s["plan_s"]}
        last |= {"plan_and_export_s": s["plan_and_export_s"]}
        last["plan_vs_scoring"] = round(s["plan_s"] / s["scoring_s"], 2)
        last["export_vs_scoring"] = round(s["plan_and_export_s"] / s["scoring_s"], 2)
    print(" ".join(f"{k}={v}" for k, v in last.items()))


if __name__ == "__main__":
    main()
