#!/usr/bin/env python
"""The complaint credit grade two ways, against the generator's truth (issue 13's "Measure").

One generated world (default 20,000 customers, 8 months from 2026-01, Guangdong and Sichuan, no
drift). The credit outcome (``credit_bad_event``, a bad credit event within 3 months) has matured
for the first months only; the test month is the latest matured one, the month before it
validates, the matured months before that train (``training.data.time_split``).

**1. Same month, against the oracle.** On every labelled customer of the test month:

* the specification's scorecard (``training.scorecard.fit_scorecard``, served as
  ``training.model.ScorecardModel``), fitted on every customer of the month before the test
  month as ``training.fit_scorecard`` fits it: without labels, and with that month's outcome
  optimising the weights (``outcome_kind="bad_event"``); CRITIC (the default) and entropy weights;
* the supervised XGBoost model (``core.kinds.RiskGrade``: P(bad event), cut into grades at the
  group's grade shares) with fixed parameters (``training.tune.base_params`` — objective, the
  task's monotone constraints — and ``SMALL_TABLE_START``), trained on every labelled outcome of
  the earlier matured months; beside it the platform's two baselines on the same split
  (``training.baselines``: untuned XGBoost with XGBoost's defaults, logistic regression);
* the oracle: its grades (the true grade, kappa 1 by construction) and its true risk
  ``p_credit_bad_event`` cut into grades as the supervised model cuts its own (the best the
  supervised model can reach with unlimited labels).

The true grade is ``predicted_grade`` of the oracle's ``p_credit_grade_1..5``. Against it:
quadratic weighted kappa, 漏判率 (truly 1-2 graded 4-5), 误判率 (truly 3 graded 1-2), truly 4-5
graded 1-2. Against the outcome (``RiskGrade.metrics``; a scorecard's grades one-hot): grade AUC
(ties within a grade counted half), event rate of grades 1-2 and of 4-5; and the AUC of the
continuous output (the scorecard's 0-100 score, the model's risk, the oracle's risk) as a
diagnostic. Grades are the models' grades before the black-list rule (as training judges them).
A paired bootstrap of the test customers gives 95% intervals of supervised − scorecard.

**2. Learning curve.** The supervised model trained on N labelled outcomes: customers of the
training months drawn at random (per seed), their rows of the training months train and their
rows of the validation month early-stop; N counts both. The grade cut-offs are quantiles of the
predicted risk, which need no label: taken on every customer of the validation month. Kappa
against the true grade and grade AUC against the outcome on the same test month, beside the
scorecard's (flat lines). ``labels_to_beat_*``: the smallest N of the grid from which the mean
over seeds stays above the label-free CRITIC scorecard (NA: not within the labels there are).

Usage::

    python benchmarks/bench_credit.py [--customers 20000] [--months 8] [--seeds 5]
    python benchmarks/bench_credit.py --quick        # 3,000 customers, 6 months, 3 points (~30 s)

The world is built into ``--workdir`` once and reused while its settings match (``--rebuild``
forces a new one). Writes ``benchmarks/results/credit-<date>.json`` and a ``.png`` of the curve
(``--quick``: ``<workdir>/credit-quick.json``);
the last line is ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
import warnings
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.common import ROOT, environment  # noqa: E402

TASK = "credit_grade"
PROVINCES = ("GD", "SC")
#: Labelled outcomes (train + early-stopping rows) of the learning curve; "all" is added.
GRID = (250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 32000)
QUICK_GRID = (300, 1500)
BOOTSTRAP = 200
#: The grade codes, to turn one-hot grades into a number.
GRADES = np.arange(1, 6)


# -- the world ---------------------------------------------------------------------------------


def world(workdir: Path, customers: int, months: int, seed: int, rebuild: bool):
    """The generated, built and materialized world (``tests.conftest.build_world``), reused when
    its settings match; returns its settings and how long the build took (0 when reused)."""
    from core.settings import Settings
    from features.generate import GeneratorConfig
    from tests.conftest import build_world

    wanted = {"customers": customers, "months": months, "seed": seed, "provinces": list(PROVINCES)}
    directory = workdir / f"n{customers}-m{months}-s{seed}"
    marker = directory / "bench-world.json"
    if not rebuild and marker.exists() and json.loads(marker.read_text()) == wanted:
        return Settings(workdir=directory / "world"), 0.0
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    config = GeneratorConfig(
        customers=customers,
        months=months,
        start_month="2026-01",
        provinces=PROVINCES,
        seed=seed,
        drift_month=None,
    )
    started = time.perf_counter()
    built = build_world(directory / "world", config)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps(wanted))
    return built.settings, seconds


# -- measuring grades --------------------------------------------------------------------------


def one_hot(grades: np.ndarray) -> np.ndarray:
    p = np.zeros((len(grades), 5))
    p[np.arange(len(grades)), np.asarray(grades, int) - 1] = 1.0
    return p


def judge(t, true: np.ndarray, y: np.ndarray, p: np.ndarray, continuous: np.ndarray, higher_is_better: bool):
    """Against the true grade (``test_report``) and the outcome (``RiskGrade.metrics``), plus the AUC
    of the continuous output and the grade shares."""
    from sklearn.metrics import roc_auc_score

    from core.kinds import predicted_grade
    from training.scorecard import test_report

    graded = predicted_grade(p)
    truth = test_report(true, graded)
    outcome = t.kind.metrics(y, p)
    good = y == 0
    score = continuous if higher_is_better else -np.asarray(continuous, float)
    return {
        "quadratic_weighted_kappa": truth["quadratic_weighted_kappa"],
        "missed_judgement_rate": truth["missed_judgement_rate"],
        "misjudgement_rate": truth["misjudgement_rate"],
        "good_graded_low_rate": truth["good_graded_low_rate"],
        "exact_accuracy": truth["exact_accuracy"],
        "grade_auc": outcome["grade_auc"],
        "score_auc": float(roc_auc_score(good, score)),
        "low_grade_event_rate": outcome["low_grade_event_rate"],
        "high_grade_event_rate": outcome["high_grade_event_rate"],
        "outcome_missed_judgement_rate": outcome["missed_judgement_rate"],
        "grade_shares": [float(s) for s in np.bincount(graded, minlength=6)[1:] / len(graded)],
        "event_rate_by_grade": [
            float(y[graded == g].mean()) if (graded == g).any() else None for g in range(1, 6)
        ],
        "confusion": truth["confusion"],
    }


def paired_bootstrap(t, true, y, grades: dict[str, np.ndarray], seed: int = 0, n: int = BOOTSTRAP) -> dict:
    """Per pair (method − the label-free CRITIC scorecard): 2.5% and 97.5% percentiles of the
    kappa and grade-AUC differences over ``n`` resamples of the test customers."""
    from sklearn.metrics import roc_auc_score

    from training.scorecard import confusion_table, quadratic_kappa

    rng = np.random.default_rng(seed)
    names = list(grades)
    kappas, aucs = np.empty((n, len(names))), np.empty((n, len(names)))
    good = y == 0
    for k in range(n):
        i = rng.integers(0, len(y), len(y))
        for m, name in enumerate(names):
            g = grades[name][i]
            kappas[k, m] = quadratic_kappa(confusion_table(true[i], g))
            aucs[k, m] = roc_auc_score(good[i], g)
    base = names.index("scorecard_critic")
    out = {}
    for m, name in enumerate(names):
        if m == base:
            continue
        dk, da = kappas[:, m] - kappas[:, base], aucs[:, m] - aucs[:, base]
        out[name] = {
            "kappa_diff_95": [float(np.percentile(dk, 2.5)), float(np.percentile(dk, 97.5))],
            "grade_auc_diff_95": [float(np.percentile(da, 2.5)), float(np.percentile(da, 97.5))],
        }
    return out


# -- the two methods ---------------------------------------------------------------------------


def scorecards(settings, t, labels: pd.DataFrame, fit_month: str, previous_month: str, methods):
    """The scorecards fitted on every customer of ``fit_month``: per method, without and with the
    month's credit outcome optimising the weights."""
    from core.scorecard_config import ScorecardConfig
    from training.data import snapshot_frame
    from training.model import ScorecardModel
    from training.scorecard import fit_scorecard

    frame = snapshot_frame(settings, t, fit_month)
    previous = snapshot_frame(settings, t, previous_month)
    known = labels.loc[labels[t.label].notna(), ["msisdn", "month", t.label]]
    outcome = frame[["msisdn", "month"]].merge(known, on=["msisdn", "month"], how="left")[t.label]
    models = {}
    for method in methods:
        config = ScorecardConfig(method=method)
        started = time.perf_counter()
        plain = fit_scorecard(frame, config, previous=previous)
        models[f"scorecard_{method}"] = (ScorecardModel(t, plain), 0, time.perf_counter() - started)
        started = time.perf_counter()
        optimised = fit_scorecard(frame, config, outcome, outcome_kind="bad_event", previous=previous)
        seconds = time.perf_counter() - started
        models[f"scorecard_{method}_optimised"] = (
            ScorecardModel(t, optimised),
            int(outcome.notna().sum()),
            seconds,
        )
    return models, len(frame)


def curve_params(t, seed: int, threads: int) -> dict:
    """The curve's fixed parameters: the platform's fixed ones (objective, histogram trees, the
    credit task's monotone constraints) and a small table's first trial."""
    from training.tune import SMALL_TABLE_START, base_params

    return {**base_params(t, seed, threads), **SMALL_TABLE_START}


def supervised(t, data, customers: np.ndarray | None, seed: int, threads: int):
    """The RiskGrade model trained on the rows of ``customers`` (None: every customer) of the
    training months, early-stopped on their rows of the validation month; cut-offs from every
    customer of the validation month. Returns (TaskModel, labelled outcomes used, bad events among
    them, customers)."""
    import xgboost as xgb

    from training.model import TaskModel

    train, valid = data.frames["train"], data.frames["valid"]
    if customers is None:
        rows_train, rows_valid = np.ones(len(train), bool), np.ones(len(valid), bool)
    else:
        rows_train = train["msisdn"].isin(customers).to_numpy()
        rows_valid = valid["msisdn"].isin(customers).to_numpy()
    Xt, yt = data.X["train"][rows_train], data.y["train"][rows_train]
    Xv, yv = data.X["valid"][rows_valid], data.y["valid"][rows_valid]
    dtrain = xgb.DMatrix(Xt, label=yt, enable_categorical=True)
    dvalid = xgb.DMatrix(Xv, label=yv, enable_categorical=True)
    booster = xgb.train(
        curve_params(t, seed, threads),
        dtrain,
        num_boost_round=600,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=30,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    booster = booster[: best + 1]
    raw_valid = booster.predict(xgb.DMatrix(data.X["valid"], enable_categorical=True))
    calibration = t.kind.fit_calibration(raw_valid, data.y["valid"], yt)
    used = int(rows_train.sum() + rows_valid.sum())
    events = int(np.nansum(yt) + np.nansum(yv))
    n_customers = len(set(train.loc[rows_train, "msisdn"]) | set(valid.loc[rows_valid, "msisdn"]))
    return TaskModel(t, booster, calibration, best), used, events, n_customers


def sample_customers(data, n_labels: int, rng: np.random.Generator) -> np.ndarray | None:
    """Customers drawn at random from the training months until their rows (training and
    validation months) would exceed ``n_labels``; None when that is every customer."""
    rows = pd.concat([data.frames["train"]["msisdn"], data.frames["valid"]["msisdn"]]).value_counts()
    order = rng.permutation(rows.index.intersection(pd.Index(data.frames["train"]["msisdn"].unique())))
    counts = rows.loc[order].to_numpy()
    take = int(np.searchsorted(np.cumsum(counts), n_labels, side="right"))
    return None if take >= len(order) else order[:take]


def first_beating(curve: pd.DataFrame, metric: str, level: float) -> dict:
    """The smallest N of the grid from which the mean over seeds stays above ``level`` (None: never),
    and where the curve crosses ``level`` between that point and the one before (linear in log N)."""
    means = curve.groupby("target")[[metric, "labels"]].mean().sort_index()
    m, n = means[metric].to_numpy(), means["labels"].to_numpy()
    for k in range(len(m)):
        if (m[k:] > level).all():
            if k == 0:
                return {"grid": int(round(n[0])), "interpolated": None}
            share = (level - m[k - 1]) / (m[k] - m[k - 1])
            crossing = math.exp(math.log(n[k - 1]) + share * (math.log(n[k]) - math.log(n[k - 1])))
            return {"grid": int(round(n[k])), "interpolated": int(round(crossing))}
    return {"grid": None, "interpolated": None}


# -- output ------------------------------------------------------------------------------------


def plot(curve: pd.DataFrame, lines: dict[str, dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = curve.groupby("target").agg(
        labels=("labels", "mean"),
        kappa=("quadratic_weighted_kappa", "mean"),
        kappa_sd=("quadratic_weighted_kappa", "std"),
        auc=("grade_auc", "mean"),
        auc_sd=("grade_auc", "std"),
    )
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = {
        "scorecard_critic": ("tab:red", "-", "scorecard CRITIC, no labels"),
        "scorecard_critic_optimised": ("tab:orange", "--", "scorecard CRITIC, weights optimised"),
        "oracle_risk_bands": ("tab:gray", ":", "oracle risk in bands (supervised ceiling)"),
    }
    for ax, (metric, sd, label) in zip(
        axes, (("kappa", "kappa_sd", "QWK vs true grade"), ("auc", "auc_sd", "grade AUC vs outcome"))
    ):
        ax.errorbar(
            stats["labels"],
            stats[metric],
            yerr=stats[sd].fillna(0),
            marker="o",
            capsize=3,
            color="tab:blue",
            label="supervised XGBoost (mean ± sd over seeds)",
        )
        key = "quadratic_weighted_kappa" if metric == "kappa" else "grade_auc"
        for name, (color, style, text) in styles.items():
            if name in lines:
                ax.axhline(lines[name][key], color=color, linestyle=style, label=text)
        levels = [lines[name][key] for name in styles if name in lines]
        low = min([*levels, *(stats[metric] - stats[sd].fillna(0))])
        high = max([*levels, *(stats[metric] + stats[sd].fillna(0))])
        ax.set_ylim(low - 0.02, high + 0.02)
        ax.set_xscale("log")
        ax.set_xlabel("labelled outcomes (training + early-stopping rows)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "NA"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


METRICS = ("quadratic_weighted_kappa", "grade_auc", "score_auc", "missed_judgement_rate", "misjudgement_rate")


def same_month(settings, t, data, labels: pd.DataFrame, true: np.ndarray, args) -> dict:
    """Part 1: every method's grades of the test month, judged against the truth and the outcome."""
    from core.kinds import predicted_grade
    from training.baselines import linear_model, untuned_xgboost
    from training.tune import TuningBudget

    split, test, valid = data.split, data.frames["test"], data.frames["valid"]
    y, X_test = data.y["test"], data.frames["test"][t.feature_names]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    months = sorted(set(labels["month"]))
    previous_month = months[months.index(split.valid) - 1]
    cards, fit_rows = scorecards(settings, t, labels, split.valid, previous_month, methods)
    print(f"scorecards fitted on {split.valid} ({fit_rows} customers, stability against {previous_month})")
    rows, grades = {}, {}
    for name, (model, used, seconds) in cards.items():
        p = model.probabilities(X_test)
        rows[name] = {"labels": used, "seconds": seconds, **judge(t, true, y, p, model.raw(X_test), True)}
        rows[name]["weights"] = model.card.weights
        grades[name] = predicted_grade(p)

    full = []
    for seed in range(args.seeds):
        started = time.perf_counter()
        model, used, events, _ = supervised(t, data, None, seed, args.threads)
        p = model.probabilities(X_test)
        m = judge(t, true, y, p, model.raw(X_test), False)
        seconds = time.perf_counter() - started
        rounds = model.best_iteration + 1
        full.append(
            {"seed": seed, "labels": used, "events": events, "seconds": seconds, "rounds": rounds, **m}
        )
        if seed == 0:
            grades["supervised"] = predicted_grade(p)
    numeric = [k for k, v in full[0].items() if isinstance(v, float | int) and k != "seed"]
    rows["supervised"] = {
        **{k: float(np.mean([r[k] for r in full])) for k in numeric},
        "labels": full[0]["labels"],
        "seeds": len(full),
        "kappa_sd": float(np.std([r["quadratic_weighted_kappa"] for r in full])),
        "grade_auc_sd": float(np.std([r["grade_auc"] for r in full])),
        **{k: full[0][k] for k in ("grade_shares", "event_rate_by_grade", "confusion")},
    }
    budget = TuningBudget(seed=0, threads=args.threads)
    for name, fit in (
        ("untuned_xgboost", lambda: untuned_xgboost(data, budget)),
        ("logistic", lambda: linear_model(data)),
    ):
        started = time.perf_counter()
        p = fit()  # one-hot grades: the continuous AUC is the grade AUC
        seconds = time.perf_counter() - started
        rows[name] = {
            "labels": full[0]["labels"],
            "seconds": seconds,
            **judge(t, true, y, p, p @ GRADES, True),
        }
        grades[name] = predicted_grade(p)

    # the oracle's risk cut as the supervised model cuts its own (cut-offs on the validation month)
    calibration = t.kind.fit_calibration(valid["p_credit_bad_event"].to_numpy(), None, data.y["train"])
    risk = test["p_credit_bad_event"].to_numpy()
    bands = t.kind.calibrate(risk, calibration)
    rows["oracle_risk_bands"] = {"labels": 0, **judge(t, true, y, bands, risk, False)}
    grades["oracle_risk_bands"] = predicted_grade(bands)
    rows["oracle_grades"] = {"labels": 0, **judge(t, true, y, one_hot(true), risk, False)}
    return {
        "rows": rows,
        "supervised_seeds": full,
        "bootstrap": paired_bootstrap(t, true, y, grades),
        "scorecard_fit": {"month": split.valid, "previous_month": previous_month, "customers": fit_rows},
    }


def learning_curve(t, data, true: np.ndarray, grid: list[int], full: list[dict], args) -> pd.DataFrame:
    """Part 2: the supervised model on N labelled outcomes per seed; the all-labels fits of part 1 last."""
    X_test, y = data.frames["test"][t.feature_names], data.y["test"]
    points = []
    for target in grid:
        for seed in range(args.seeds):
            customers = sample_customers(data, target, np.random.default_rng(1000 + seed))
            if customers is None:
                break
            started = time.perf_counter()
            model, used, events, n_customers = supervised(t, data, customers, seed, args.threads)
            m = judge(t, true, y, model.probabilities(X_test), model.raw(X_test), False)
            points.append(
                {
                    "target": target,
                    "seed": seed,
                    "labels": used,
                    "events": events,
                    "customers": n_customers,
                    "rounds": model.best_iteration + 1,
                    "seconds": time.perf_counter() - started,
                    **{k: m[k] for k in METRICS},
                }
            )
        print(f"  curve N={target}: {sum(p['target'] == target for p in points)} fits")
    for r in full:
        points.append(
            {
                "target": r["labels"],
                "seed": r["seed"],
                "labels": r["labels"],
                "events": r["events"],
                "customers": None,
                "rounds": r["rounds"],
                "seconds": r["seconds"],
                **{k: r[k] for k in METRICS},
            }
        )
    return pd.DataFrame(points)


def print_tables(
    rows: dict, bootstrap: dict, curve: pd.DataFrame, beats: dict, test_month: str, n: int
) -> None:
    columns = {
        "labels": "labels",
        "quadratic_weighted_kappa": "QWK",
        "missed_judgement_rate": "漏判率",
        "misjudgement_rate": "误判率",
        "good_graded_low_rate": "good→1-2",
        "exact_accuracy": "exact",
        "grade_auc": "grade AUC",
        "score_auc": "score AUC",
        "low_grade_event_rate": "events 1-2",
        "high_grade_event_rate": "events 4-5",
    }
    table = pd.DataFrame({k: {c: v.get(c) for c in columns} for k, v in rows.items()}).T.rename(
        columns=columns
    )
    table["labels"] = table["labels"].astype(int)
    table["grade shares 1..5"] = pd.Series(
        {k: "/".join(f"{s:.0%}" for s in v["grade_shares"]) for k, v in rows.items()}
    )
    print(f"\n1. test month {test_month}, {n} customers, true grade = rounded expected oracle grade")
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print("\npaired bootstrap, 95% interval of (row − scorecard_critic); supervised: the first seed's model")
    for name, b in bootstrap.items():
        (k0, k1), (a0, a1) = b["kappa_diff_95"], b["grade_auc_diff_95"]
        print(f"  {name:28s} QWK {k0:+.4f} .. {k1:+.4f}   grade AUC {a0:+.4f} .. {a1:+.4f}")
    summary = curve.groupby("target").agg(
        labels=("labels", "mean"),
        customers=("customers", "mean"),
        events=("events", "mean"),
        seeds=("seed", "count"),
        rounds=("rounds", "mean"),
        qwk=("quadratic_weighted_kappa", "mean"),
        qwk_sd=("quadratic_weighted_kappa", "std"),
        grade_auc=("grade_auc", "mean"),
        grade_auc_sd=("grade_auc", "std"),
        score_auc=("score_auc", "mean"),
    )
    card, ceiling = rows["scorecard_critic"], rows["oracle_risk_bands"]
    print(
        f"\n2. learning curve (scorecard CRITIC without labels: QWK {card['quadratic_weighted_kappa']:.4f}, "
        f"grade AUC {card['grade_auc']:.4f}; oracle risk bands: QWK "
        f"{ceiling['quadratic_weighted_kappa']:.4f}, grade AUC {ceiling['grade_auc']:.4f})"
    )
    with pd.option_context("display.width", 220):
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    print("labelled outcomes from which the supervised model stays above the scorecard (mean over seeds):")
    for name, b in beats.items():
        k, a = b["kappa"], b["grade_auc"]
        print(
            f"  {name}: QWK from N={_fmt(k['grid'])} (crossing ~{_fmt(k['interpolated'])}), "
            f"grade AUC from N={_fmt(a['grid'])} (crossing ~{_fmt(a['interpolated'])})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--months", type=int, default=8, help="Recorded months from 2026-01.")
    parser.add_argument("--world-seed", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=10, help="Seeds (draws of customers) per curve point.")
    parser.add_argument("--grid", default=",".join(map(str, GRID)), help="Labelled outcomes per point.")
    parser.add_argument("--methods", default="critic,entropy", help="Scorecard weighting methods.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/telcoml-bench-credit"))
    parser.add_argument("--rebuild", action="store_true", help="Build the world again even if it matches.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3,000 customers, 6 months, 3 seeds, curve at 300, 1,500 and all labels.",
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.months, args.seeds = 3000, 6, 3
        args.grid = ",".join(map(str, QUICK_GRID))
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    from core.kinds import predicted_grade
    from core.tasks import TASKS
    from training.data import label_months, load_labels, make_dataset, time_split
    from training.evaluate import oracle_predictions

    started = time.perf_counter()
    t = TASKS[TASK]
    settings, build_seconds = world(args.workdir, args.customers, args.months, args.world_seed, args.rebuild)
    print(f"world: {settings.workdir} ({f'built in {build_seconds:.0f} s' if build_seconds else 'reused'})")
    labels = load_labels(settings)
    matured = label_months(labels, t)
    split = time_split(matured, train_months=4, test_month=matured[-1])
    data = make_dataset(settings, t, split)
    y = data.y["test"]
    true = predicted_grade(oracle_predictions(t, data.frames["test"]))
    true_shares = np.bincount(true, minlength=6)[1:] / len(true)
    print(
        f"matured months {matured}; train {list(split.train)}, valid {split.valid}, test {split.test}; "
        f"rows train {len(data.y['train'])} valid {len(data.y['valid'])} test {len(y)}; "
        f"event rate test {y.mean():.2%}; true grade shares " + "/".join(f"{s:.1%}" for s in true_shares)
    )

    part1 = same_month(settings, t, data, labels, true, args)
    rows = part1["rows"]
    grid = [int(n) for n in args.grid.split(",") if n.strip()]
    curve = learning_curve(t, data, true, grid, part1["supervised_seeds"], args)
    beats = {
        name: {
            "kappa": first_beating(curve, "quadratic_weighted_kappa", rows[name]["quadratic_weighted_kappa"]),
            "grade_auc": first_beating(curve, "grade_auc", rows[name]["grade_auc"]),
        }
        for name in ("scorecard_critic", "scorecard_critic_optimised")
        if name in rows
    }
    print_tables(rows, part1["bootstrap"], curve, beats, split.test, len(y))

    today = date.today().isoformat()
    results = ROOT / "benchmarks" / "results" / f"credit-{today}.json"
    output = args.output or (args.workdir / "credit-quick.json" if args.quick else results)
    output.parent.mkdir(parents=True, exist_ok=True)
    title = (
        f"credit grade, {args.customers:,} customers, test month {split.test}: "
        "supervised on N labelled outcomes vs the specification's scorecard"
    )
    plot(curve, rows, output.with_suffix(".png"), title)
    seconds = time.perf_counter() - started
    result = {
        "date": today,
        "world": {
            "customers": args.customers,
            "months": args.months,
            "seed": args.world_seed,
            "provinces": list(PROVINCES),
            "build_seconds": build_seconds,
        },
        "split": split.describe(),
        "test_customers": int(len(y)),
        "test_event_rate": float(y.mean()),
        "true_grade_shares": [float(s) for s in true_shares],
        "scorecard_fit": part1["scorecard_fit"],
        "curve_parameters": {k: v for k, v in curve_params(t, 0, args.threads).items() if k != "seed"},
        "same_month": rows,
        "supervised_seeds": part1["supervised_seeds"],
        "bootstrap_vs_scorecard_critic": part1["bootstrap"],
        "curve": curve.to_dict("records"),
        "labels_to_beat": beats,
        "seconds": seconds,
        "environment": environment(("xgboost", "scikit-learn", "feast", "numpy", "pandas")),
    }
    output.write_text(json.dumps(result, indent=2, default=str, ensure_ascii=False))
    print(f"\nwrote {output} and {output.with_suffix('.png').name} ({seconds:.0f} s)")

    card, sup, oracle = rows["scorecard_critic"], rows["supervised"], rows["oracle_grades"]
    optimised = rows.get("scorecard_critic_optimised", {})
    pairs = {
        "scorecard_kappa": card["quadratic_weighted_kappa"],
        "scorecard_optimised_kappa": optimised.get("quadratic_weighted_kappa"),
        "supervised_kappa": sup["quadratic_weighted_kappa"],
        "oracle_kappa": oracle["quadratic_weighted_kappa"],
        "oracle_risk_bands_kappa": rows["oracle_risk_bands"]["quadratic_weighted_kappa"],
        "scorecard_to_supervised_kappa": card["quadratic_weighted_kappa"] / sup["quadratic_weighted_kappa"],
        "scorecard_grade_auc": card["grade_auc"],
        "scorecard_optimised_grade_auc": optimised.get("grade_auc"),
        "supervised_grade_auc": sup["grade_auc"],
        "oracle_grade_auc": oracle["grade_auc"],
        "scorecard_to_supervised_auc": card["grade_auc"] / sup["grade_auc"],
        "scorecard_missed": card["missed_judgement_rate"],
        "supervised_missed": sup["missed_judgement_rate"],
        "scorecard_misjudged": card["misjudgement_rate"],
        "supervised_misjudged": sup["misjudgement_rate"],
        "labels_to_beat_scorecard_kappa": beats["scorecard_critic"]["kappa"]["grid"],
        "labels_to_beat_scorecard_auc": beats["scorecard_critic"]["grade_auc"]["grid"],
        "labels_crossing_scorecard_kappa": beats["scorecard_critic"]["kappa"]["interpolated"],
        "labels_crossing_scorecard_auc": beats["scorecard_critic"]["grade_auc"]["interpolated"],
        "all_labels": sup["labels"],
    }
    print(" ".join(f"{k}={_fmt(v)}" for k, v in pairs.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
