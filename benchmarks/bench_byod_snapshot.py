#!/usr/bin/env python
"""A province's real data, as it comes (issue 14): one labelled snapshot, other columns.

Two customer tables are made from a generated world (one province, the one month whose
churn labels have matured) and brought in as a province would, with ``telcoml byod --train``
(``telcoml.pipeline.bring_your_own_data``, default budget: suited to the table):

* **snapshot**: every indicator of the five models and all five labels, one month. A
  third of the columns carry the province's own names (mapped back in the mapping), the
  categories its own Chinese codes, and three library indicators are replaced by
  province-specific columns (custom indicators of the province file): the bill change in
  percent instead of ``bill_change_ratio``, data in GB instead of ``data_mb``, roaming in
  hours instead of ``roaming_minutes_3m``, plus a category segment of the province's own.
* **churn only**: a churn table whose columns are all the province's own: each of churn's
  indicators under another name, in other units (amounts in fen, data in GB, minutes in
  hours) or other codes, declared as custom indicators; the province file drops every
  library indicator from the churn model.

Per model: the platform's held-out metric (the tuned model, measured before the refit)
beside the two baselines the training run fits on the same split and judges on the same
held-out customers (untuned XGBoost, logistic regression), and the 5-fold
cross-validation of the tuned settings. Goal: the platform at or above the best baseline on
each model of both tables.

Usage::

    python benchmarks/bench_byod_snapshot.py [--customers 6000] [--seeds 7,8] [--workdir W]

A held-out part of a few thousand customers is noisy (a churn AUC's standard error is about
0.02 on 1,200 customers), so the margins are averaged over worlds. Ends with one line of
``key=value`` pairs: the smallest mean margin over the best baseline per table, how many
models are at or above it on average, how many runs the gate refused as significantly
below a baseline, and ``goal_met``.
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

PROVINCE = "SC"
#: Library indicator -> (the province's column, factor): the replaced ones come in other units.
REPLACED = {
    "bill_change_ratio": ("HF_BD_BFB", "bill_change_pct", "float", 100.0),
    "data_mb": ("LL_GB", "data_gb", "float", 1 / 1024),
    "roaming_minutes_3m": ("MY_XS", "roaming_hours_3m", "int", 1 / 60),
}
CODES_ZH = {
    "customer_category": {"individual": "个人", "group_member": "集团", "vip_silver": "银卡",
                          "vip_gold": "金卡", "vip_diamond": "钻卡"},
    "brand": {"gotone": "全球通", "mzone": "动感地带", "easyown": "神州行"},
    "payment_method": {"prepaid": "预付费", "postpaid_cash": "后付费", "bank_debit": "托收"},
    "terminal_class": {"feature_phone": "功能机", "smartphone_4g": "4G智能机", "smartphone_5g": "5G智能机",
                       "unknown": "未知"},
}  # fmt: skip
LABEL_COLUMNS = {
    "credit_grade": "XY_DJ",
    "tariff_sensitivity": "ZF_MG",
    "complaint_sensitivity": "TS_MG",
    "churn": "LS_BZ",
    "channel_preference": "QD_PH",
}


def world(workdir: Path, customers: int, seed: int) -> tuple[pd.DataFrame, str]:
    """One province's indicators and labels of its latest month with matured labels."""
    from core import indicators as lib
    from core.settings import Settings
    from features.build import available_months, available_provinces, build_indicators, offline_file
    from features.generate import GeneratorConfig, generate

    s = Settings(workdir=workdir / "world")
    config = GeneratorConfig(
        customers=customers,
        months=3,
        start_month="2026-01",
        provinces=(PROVINCE,),
        seed=seed,
        drift_month=None,
    )
    generate(config, s.raw_dir, s.truth_dir)
    months = available_months(s.raw_dir, PROVINCE)
    build_indicators(s.raw_dir, s.offline_dir, available_provinces(s.raw_dir), months)
    month = months[-2]
    parts = [
        pd.read_parquet(offline_file(s.offline_dir, subject, PROVINCE, month))
        .drop(columns=["event_timestamp", "created_timestamp"])
        .set_index("msisdn")
        for subject in lib.SUBJECTS
    ]
    indicators = pd.concat(parts, axis=1).reset_index()
    labels = pd.read_parquet(s.truth_dir / "labels" / f"{PROVINCE}.parquet")
    return indicators.merge(labels[labels["month"] == month].drop(columns=["province"]), on="msisdn"), month


def _yaml_list(values) -> str:
    return "[" + ", ".join(values) + "]"


def snapshot_case(rows: pd.DataFrame, month: str, directory: Path) -> tuple[Path, str]:
    """The snapshot table, its mapping and province file; returns (mapping path, province file)."""
    from core import indicators as lib
    from core.tasks import TASKS

    used = sorted({i.id for t in TASKS.values() for i in t.indicators} - {"province"} - set(REPLACED))
    renamed = {ind: f"C{k:02d}_{ind[:6].upper()}" for k, ind in enumerate(used) if k % 3 == 0}
    table = pd.DataFrame({"SJHM": rows["msisdn"], "TJYF": month.replace("-", "")})
    for ind in used:
        values = rows[ind]
        if ind in CODES_ZH:
            values = values.map(CODES_ZH[ind])
        table[renamed.get(ind, ind)] = values
    for ind, (column, _, kind, factor) in REPLACED.items():
        scaled = rows[ind] * factor
        table[column] = scaled.round() if kind == "int" else scaled.round(3)
    segment = np.select(
        [rows["brand"] == "mzone", rows["brand"] == "gotone", rows["tenure_months"] >= 120],
        ["youth", "business", "senior"],
        "family",
    )
    table["ZDY_FQ"] = segment
    for task, column in LABEL_COLUMNS.items():
        table[column] = rows[TASKS[task].label]
    table.to_csv(directory / "snapshot.csv", index=False)

    columns = "\n".join(f"  {renamed.get(i, i)}: {i}" for i in used)
    codes = "\n".join(
        f"  {ind}: {{{', '.join(f'{zh}: {code}' for code, zh in CODES_ZH[ind].items())}}}"
        for ind in CODES_ZH
        if ind in used
    )
    labels = "\n".join(f"  {column}: {task}" for task, column in LABEL_COLUMNS.items())
    mapping = directory / "mapping.yaml"
    mapping.write_text(
        f"province: {PROVINCE}\nsource:\n  path: snapshot.csv\nmsisdn: SJHM\nmonth: TJYF\n"
        f"columns:\n{columns}\nlabels:\n{labels}\ncodes:\n{codes}\n"
    )
    customs = []
    for ind, (column, custom_id, kind, _) in REPLACED.items():
        tasks = sorted({t.evaluation for t in TASKS.values() if ind in t.feature_names})
        customs.append(
            f"  - {{id: {custom_id}, name_zh: {custom_id}, name_en: {custom_id}, definition: "
            f"{json.dumps(lib.BY_ID[ind].name_en + ' in the province units')}, column: {column}, kind: {kind}, nullable: true, "
            f"tasks: {_yaml_list(tasks)}}}"
        )
    customs.append(
        "  - {id: local_segment, name_zh: 本地客户分群, name_en: Local segment, definition: the province's "
        "own segment, column: ZDY_FQ, kind: category, codes: [youth, family, business, senior], "
        "tasks: [credit_grade, churn]}"
    )
    optional = [i.id for i in lib.credit_indicators("optional")]
    province = (
        f"province: {PROVINCE}\noptional_indicators: {_yaml_list(optional)}\n"
        f"drop_indicators: {_yaml_list(REPLACED)}\ncustom_indicators:\n" + "\n".join(customs) + "\n"
    )
    return mapping, province


def churn_only_case(rows: pd.DataFrame, month: str, directory: Path) -> tuple[Path, str]:
    """A churn table with none of the library's columns: every indicator the province's own."""
    from core import indicators as lib
    from core.tasks import TASKS

    t = TASKS["churn"]
    table = pd.DataFrame({"HM": rows["msisdn"], "YF": month.replace("-", "")})
    customs = []
    for k, ind in enumerate(i for i in t.indicators if i.id != "province"):
        column, custom_id = f"Z{k:02d}", f"own_{ind.id}"
        values = rows[ind.id]
        if ind.kind == "category":
            table[column] = values.map({code: f"k{j}" for j, code in enumerate(ind.codes)})
            extra = f"kind: category, codes: {_yaml_list(f'k{j}' for j in range(len(ind.codes)))}"
        elif ind.unit in ("yuan",):  # amounts in fen
            table[column] = (values * 100).round()
            extra = "kind: float"
        elif "minutes" in ind.id:  # minutes in hours
            table[column] = (values / 60).round(2)
            extra = "kind: float"
        elif ind.id == "data_mb":
            table[column] = (values / 1024).round(3)
            extra = "kind: float"
        else:
            table[column] = values
            extra = f"kind: {'int' if ind.kind == 'int' else 'float'}"
        customs.append(
            f"  - {{id: {custom_id}, name_zh: {custom_id}, name_en: {custom_id}, definition: "
            f"{json.dumps(lib.BY_ID[ind.id].name_en + ' as the province keeps it')}, column: {column}, {extra}, "
            "nullable: true, tasks: [churn]}"
        )
    table["LS"] = rows[t.label].map({1: "Y", 0: "N"})
    table.to_csv(directory / "churn.csv", index=False)
    ids = [c.split("id: ")[1].split(",")[0] for c in customs]
    columns = "\n".join(f"  Z{k:02d}: {custom}" for k, custom in enumerate(ids))
    mapping = directory / "mapping.yaml"
    mapping.write_text(
        f"province: {PROVINCE}\nsource:\n  path: churn.csv\nmsisdn: HM\nmonth: YF\n"
        f"columns:\n{columns}\nlabels:\n  LS: churn\n"
    )
    province = (
        f"province: {PROVINCE}\nmodels:\n  churn:\n    drop_indicators: {_yaml_list(t.feature_names)}\n"
        "custom_indicators:\n" + "\n".join(customs) + "\n"
    )
    return mapping, province


def bring(workdir: Path, name: str, mapping: Path, province_file: str) -> list[dict]:
    """``telcoml byod --train`` on one table; a record per trained model."""
    from core.settings import Settings
    from core.tasks import TASKS
    from telcoml.pipeline import bring_your_own_data
    from training.baselines import BASELINES

    s = Settings(workdir=workdir / name)
    s.provinces_dir.mkdir(parents=True, exist_ok=True)
    (s.provinces_dir / f"{PROVINCE}.yaml").write_text(province_file)
    started = time.perf_counter()
    run = bring_your_own_data(s, mapping, train=True)
    seconds = time.perf_counter() - started
    out = []
    for r in run.training or []:
        t = TASKS[r.task]
        baselines = {k: r.metrics.get(f"baseline_{k}_{t.headline}") for k in BASELINES}
        best = max(v for v in baselines.values() if v is not None)
        model = r.metrics[f"test_{t.headline}"]
        out.append(
            {
                "table": name,
                "task": r.task,
                "metric": t.headline,
                "split": r.split,
                "rows": run.byod.customers,
                "platform": model,
                **baselines,
                "cv_mean": r.metrics.get(f"cv_{t.headline}_mean"),
                "cv_std": r.metrics.get(f"cv_{t.headline}_std"),
                "margin": model - best,
                "promoted": r.promoted,
                "gate": r.gate_reason,
                "trials": r.trials,
                "seconds": seconds,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=6000)
    parser.add_argument("--seeds", default="7,8", help="Worlds to average over, comma-separated.")
    parser.add_argument("--workdir", type=Path, default=ROOT / "telcoml-work" / "bench-byod-snapshot")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--tables", default="snapshot,churn_only", help="Which tables, comma-separated.")
    args = parser.parse_args(argv)

    records = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        workdir = args.workdir / f"seed-{seed}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        rows, month = world(workdir, args.customers, seed)
        for name, make in (("snapshot", snapshot_case), ("churn_only", churn_only_case)):
            if name not in args.tables.split(","):
                continue
            directory = workdir / f"{name}-source"
            directory.mkdir()
            mapping, province = make(rows, month, directory)
            records += [dict(r, seed=seed, month=month) for r in bring(workdir, name, mapping, province)]

    frame = pd.DataFrame(records)
    columns = ["seed", "table", "task", "metric", "split", "rows", "platform", "untuned_xgboost", "logistic",
               "cv_mean", "margin", "gate"]  # fmt: skip
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        mean = frame.groupby(["table", "task"], sort=False)[
            ["platform", "untuned_xgboost", "logistic", "margin"]
        ]
        print("\nmean over seeds:\n" + mean.mean().to_string(float_format=lambda v: f"{v:.4f}"))
    result = {
        "date": date.today().isoformat(),
        "customers": args.customers,
        "seeds": args.seeds,
        "records": records,
        "environment": environment(("xgboost", "optuna", "scikit-learn", "feast", "mlflow")),
    }
    output = args.output or ROOT / "benchmarks" / "results" / f"byod-snapshot-{date.today().isoformat()}.json"
    output.write_text(json.dumps(result, indent=2, default=str))
    margins = frame.groupby(["table", "task"])["margin"].mean()
    refused = int((~frame["promoted"]).sum())
    at_or_above = int((margins >= 0).sum())
    print(
        f"snapshot_min_mean_margin={margins.get('snapshot', pd.Series(dtype=float)).min():.4f} "
        f"churn_only_mean_margin={margins.get('churn_only', pd.Series(dtype=float)).min():.4f} "
        f"models_at_or_above_best_baseline={at_or_above}/{len(margins)} runs={len(frame)} "
        f"refused_below_baseline={refused} goal_met={'yes' if at_or_above == len(margins) == 6 else 'no'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
