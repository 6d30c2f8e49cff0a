#!/usr/bin/env python
"""How far simple models fall short of the synthetic world's truth, per model.

The generator's truths (``features.labels``) should have the structure real behaviour
has, so that a tuned tree model comes close to the oracle while a generalized linear
model of the same indicators does not. This measures, per model, on a held-out month:

* the **oracle**: the truth's own probabilities (or expected score), the best possible;
* **XGBoost** with default-ish parameters (depth 6, eta 0.1, no tuning), the number of trees
  stopped early on the month before the test month (as training validates on it);
* a **linear model**: logistic regression (churn; multinomial for the channel) or least
  squares (sensitivities; the credit grade as a number, rounded) on the training
  benchmark's linear design (``training.baselines.LinearDesign``): ``log1p`` of each
  numeric indicator (sign-preserving for ratios that can fall below zero), a missing flag
  per indicator missing in training, and one-hot categories, standardised.

Both models read the task's whole feature contract (what the platform's model reads; the
linear model does better with it than with the truth's inputs alone: a bill's change is
also in the current bill and the 3-month ARPU) or, with ``--features inputs``, only the
indicators the truth reads (``features.labels.INPUTS``).
Metrics are the task's headline (quadratic weighted kappa of the rounded expected grade,
Spearman, AUC, top-1 accuracy). Labels carry the truth's own noise, so each metric is
averaged over ``--redraws`` fresh draws of the test month's labels from the oracle (the
first draw is the generated labels); for the channel the expected top-1 accuracy is exact.

The world is generated (without drift) into ``--workdir`` once per size, seed and version of
the truths and the generator, and the snapshots the truths read are kept; ``--recompute``
evaluates the current truth functions on those kept snapshots without generating again
(fast while designing a truth; the lines closed by churn, and the base's tenures, are then
those of the truth that generated the world).

Usage::

    python benchmarks/truth_gap.py [--customers 30000] [--months 8] [--seed 7] [--recompute]
                                   [--features inputs|contract]

Prints a table per model and ends with one line of ``key=value`` pairs (model-to-oracle
ratios). Targets (issue 19): XGBoost >= 0.97 of the oracle on every model, the linear
model < 0.90 of it on at least three of the five.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without an editable install too
    sys.path.insert(0, str(ROOT))

from core import indicators as lib  # noqa: E402
from core.tasks import CREDIT_GRADES, TASKS  # noqa: E402
from features import labels as truths  # noqa: E402
from training.baselines import LinearDesign  # noqa: E402

XGB_TARGET = 0.97
LINEAR_TARGET = 0.90
XGB_PARAMS = {"max_depth": 6, "eta": 0.1, "subsample": 0.8, "min_child_weight": 5}
XGB_MAX_ROUNDS = 1000
XGB_EARLY_STOP = 30
GRADES = np.array([g[0] for g in CREDIT_GRADES])
SNAPSHOTS = "snapshots.parquet"
MARKER = "truth-gap.json"


# -- the world -------------------------------------------------------------------------------


def truth_version() -> str:
    """A digest of the truths' and the generator's source: a world another version generated
    is generated again."""
    import hashlib
    import inspect

    import features.generate as gen

    source = inspect.getsource(truths) + inspect.getsource(gen)
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def generate_world(workdir: Path, wanted: dict) -> None:
    """Generate a world without drift, keeping every snapshot the truths read."""
    import features.generate as gen

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    kept: list[pd.DataFrame] = []
    original = gen.truth_for_snapshot

    def keeping(snapshot, world, rng):
        kept.append(snapshot.copy())
        return original(snapshot, world, rng)

    config = gen.GeneratorConfig(
        customers=wanted["customers"], months=wanted["months"], seed=wanted["seed"], drift_month=None
    )
    gen.truth_for_snapshot = keeping
    try:
        gen.generate(config, workdir / "raw", workdir / "truth")
    finally:
        gen.truth_for_snapshot = original
    snapshots = pd.concat(kept, ignore_index=True)
    snapshots["month"] = snapshots["event_timestamp"].dt.strftime("%Y-%m")
    snapshots.to_parquet(workdir / SNAPSHOTS)
    (workdir / MARKER).write_text(json.dumps(wanted))


def load_world(workdir: Path, recompute: bool, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Snapshots, oracle and labels, row-aligned."""
    snapshots = pd.read_parquet(workdir / SNAPSHOTS)
    if recompute:
        rng = np.random.default_rng(seed)
        world = truths.World()
        parts = [truths.truth_for_snapshot(frame, world, rng) for _, frame in snapshots.groupby("month")]
        snapshots = pd.concat([f for _, f in snapshots.groupby("month")], ignore_index=True)
        oracle = pd.concat([p[0] for p in parts], ignore_index=True)
        labels = pd.concat([p[1] for p in parts], ignore_index=True)
        return snapshots, oracle, labels
    read = lambda kind: pd.concat(  # noqa: E731
        [pd.read_parquet(p) for p in sorted((workdir / "truth" / kind).glob("*.parquet"))], ignore_index=True
    )
    oracle, labels = read("oracle"), read("labels")
    keys = ["msisdn", "event_timestamp"]
    frame = snapshots.merge(oracle.drop(columns=["province", "month"]), on=keys, how="inner", validate="1:1")
    frame = frame.merge(labels.drop(columns=["province", "month"]), on=keys, how="inner", validate="1:1")
    return (
        frame[snapshots.columns],
        frame[oracle.columns.drop(["province", "month"])],
        frame[labels.columns.drop(["province", "month"])],
    )


# -- features ---------------------------------------------------------------------------------


def columns(evaluation: str, which: str) -> list[str]:
    """The indicators both models read: the truth's inputs or the whole feature contract."""
    if which == "contract":
        return [i.id for i in lib.for_task(evaluation)]
    return list(truths.INPUTS[evaluation])


def linear_design(frame: pd.DataFrame, names: list[str], fit_rows: np.ndarray) -> np.ndarray:
    """The training benchmark's linear design (``training.baselines.LinearDesign``: log1p of
    numbers, sign-preserving, missing flags, one-hot categories, standardised), fitted on
    ``fit_rows``."""
    encoded = pd.DataFrame(
        {
            n: pd.Categorical(frame[n], categories=list(lib.BY_ID[n].codes))
            if lib.BY_ID[n].kind == "category"
            else frame[n].to_numpy(float)
            for n in names
        }
    )
    return LinearDesign.fit(encoded[fit_rows]).transform(encoded)


def tree_design(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The platform's own encoding: numbers as floats, categories as code indices."""
    return np.column_stack([lib.encoded(lib.BY_ID[n], frame[n].to_numpy()) for n in names])


# -- models -----------------------------------------------------------------------------------


def fit_predict_linear(kind: str, x_train, y_train, x_test) -> np.ndarray:
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind in ("binary", "multiclass"):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
        model.fit(x_train, y_train)
        p = model.predict_proba(x_test)
        return p[:, 1] if kind == "binary" else p
    model = make_pipeline(StandardScaler(), LinearRegression())
    model.fit(x_train, y_train)
    return model.predict(x_test)


def fit_predict_xgb(kind: str, x_train, y_train, x_valid, y_valid, x_test, threads: int) -> np.ndarray:
    """XGBoost with fixed parameters; the number of trees stops early on the validation month."""
    import xgboost as xgb

    params = {**XGB_PARAMS, "nthread": threads, "seed": 0, "tree_method": "hist"}
    if kind == "binary":
        params.update(objective="binary:logistic", eval_metric="logloss")
    elif kind == "multiclass":
        params.update(objective="multi:softprob", eval_metric="mlogloss", num_class=len(lib.CHANNELS))
    else:
        params.update(objective="reg:squarederror", eval_metric="rmse")
    valid = xgb.DMatrix(x_valid, label=y_valid)
    booster = xgb.train(
        params,
        xgb.DMatrix(x_train, label=y_train),
        XGB_MAX_ROUNDS,
        evals=[(valid, "valid")],
        early_stopping_rounds=XGB_EARLY_STOP,
        verbose_eval=False,
    )
    return booster.predict(xgb.DMatrix(x_test), iteration_range=(0, booster.best_iteration + 1))


# -- metrics ----------------------------------------------------------------------------------


def qwk(y, grade) -> float:
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(y, grade, weights="quadratic"))


def rounded_grade(score: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(score), 1, 5).astype(int)


def _label(t) -> str:
    """The generator's label of a task: for the credit grade its grade draw (this benchmark measures
    how learnable the truth's grades are; the platform's credit model learns the outcome instead)."""
    return "credit_grade" if t.name == "credit_grade" else t.label


def redraw(task_name: str, oracle: pd.DataFrame, labels: pd.DataFrame, draws: int, seed: int) -> list:
    """The test month's labels as generated, then ``draws - 1`` fresh draws from the oracle."""
    t = TASKS[task_name]
    first = labels[_label(t)].to_numpy()
    if task_name == "channel_preference":
        first = pd.Series(first).map({c: k for k, c in enumerate(lib.CHANNELS)}).to_numpy()
    out = [first]
    rng = np.random.default_rng(seed)
    values = oracle[list(t.oracle_columns)].to_numpy(float)
    n = len(values)
    for _ in range(draws - 1):
        if task_name == "credit_grade":
            k = (values.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, 4)
            out.append(GRADES[k])
        elif task_name == "churn":
            out.append((rng.random(n) < values[:, 0]).astype(int))
        elif task_name == "channel_preference":
            out.append(None)  # expected top-1 is exact
        else:
            out.append(np.clip(values[:, 0] + rng.normal(0, truths.SENSITIVITY_NOISE_SD, n), 0, 100))
    return out


def score(task_name: str, ys: list, prediction: np.ndarray, oracle_p: np.ndarray) -> float:
    """The headline metric, averaged over the label draws."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    if task_name == "channel_preference":
        chosen = prediction.argmax(axis=1)
        return float(oracle_p[np.arange(len(chosen)), chosen].mean())
    values = []
    for y in ys:
        if task_name == "credit_grade":
            values.append(qwk(y, prediction))
        elif task_name == "churn":
            values.append(float(roc_auc_score(y, prediction)))
        else:
            values.append(float(spearmanr(y, prediction).statistic))
    return float(np.mean(values))


def evaluate(name: str, snapshots, oracle, labels, masks, args) -> tuple[float, float, float]:
    """The headline metric of the oracle, XGBoost and the linear model on the test month."""
    is_train, is_valid, is_test = masks
    t = TASKS[name]
    names = columns(t.evaluation, args.features)
    y = labels[_label(t)]
    if name == "channel_preference":
        y = y.map({c: k for k, c in enumerate(lib.CHANNELS)})
    y = y.to_numpy(float)
    oracle_p = oracle[list(t.oracle_columns)].to_numpy(float)
    oracle_p = oracle_p[:, 0] if oracle_p.shape[1] == 1 else oracle_p
    test_oracle = oracle_p[is_test]
    ys = redraw(name, oracle[is_test], labels[is_test], args.redraws, args.seed + 1)
    grade = name == "credit_grade"
    answer = rounded_grade if grade else (lambda p: p)

    o = score(name, ys, answer(test_oracle @ np.arange(1, 6)) if grade else test_oracle, test_oracle)
    x = linear_design(snapshots, names, is_train)
    lin = score(
        name, ys, answer(fit_predict_linear(t.kind.name, x[is_train], y[is_train], x[is_test])), test_oracle
    )
    x = tree_design(snapshots, names)
    p = fit_predict_xgb(
        t.kind.name, x[is_train], y[is_train], x[is_valid], y[is_valid], x[is_test], args.threads
    )
    return o, score(name, ys, answer(p), test_oracle), lin


# -- the run ----------------------------------------------------------------------------------


def distributions(snapshots: pd.DataFrame, oracle: pd.DataFrame, labels: pd.DataFrame) -> dict:
    out = {}
    grades = labels["credit_grade"].value_counts(normalize=True).sort_index()
    out["grade_shares"] = {int(k): round(float(v), 3) for k, v in grades.items()}
    for name in ("tariff_sensitivity", "complaint_sensitivity"):
        q = labels[name].quantile([0.1, 0.25, 0.5, 0.75, 0.9]).round(1)
        out[name + "_quantiles"] = q.tolist()
        out[name + "_levels"] = (
            pd.cut(labels[name], [-1, 40, 70, 101], labels=["low", "medium", "high"])
            .value_counts(normalize=True)
            .round(3)
            .to_dict()
        )
    churn = oracle.assign(month=snapshots["month"].to_numpy(), province=snapshots["province"].to_numpy())
    out["churn_by_month"] = churn.groupby("month")["churn_probability"].mean().round(4).to_dict()
    out["churn_by_province"] = churn.groupby("province")["churn_probability"].mean().round(4).to_dict()
    out["churn_mean"] = round(float(oracle["churn_probability"].mean()), 4)
    out["churn_label_rate"] = round(float(labels["churned_next_month"].mean()), 4)
    out["channel_shares"] = labels["preferred_channel"].value_counts(normalize=True).round(3).to_dict()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=30_000)
    ap.add_argument("--months", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--train-months", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/telcoml-truth-gap"))
    ap.add_argument("--recompute", action="store_true", help="current truths on the kept snapshots")
    ap.add_argument("--features", choices=("contract", "inputs"), default="contract")
    ap.add_argument("--redraws", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tasks", default=",".join(TASKS))
    args = ap.parse_args(argv)

    wanted = {
        "customers": args.customers,
        "months": args.months,
        "seed": args.seed,
        "truths": truth_version(),
    }
    marker = args.workdir / MARKER
    kept = json.loads(marker.read_text()) if marker.exists() else None
    same_world = kept is not None and all(kept.get(k) == v for k, v in wanted.items() if k != "truths")
    same_truths = kept is not None and kept.get("truths") == wanted["truths"]
    if not (same_world and (args.recompute or same_truths)):
        started = time.perf_counter()
        generate_world(args.workdir, wanted)
        print(
            f"generated {args.customers:,} customers x {args.months} months in {time.perf_counter() - started:.0f} s"
        )
    elif not args.recompute:
        print(f"reusing the world in {args.workdir}")
    snapshots, oracle, labels = load_world(args.workdir, args.recompute, args.seed)
    dist = distributions(snapshots, oracle, labels)
    print(json.dumps(dist, indent=1, default=str))

    months = sorted(snapshots["month"].unique())
    test, valid = months[-2], months[-3]  # as training does: the last month's churn has not matured
    train = months[-3 - args.train_months : -3]
    is_train = snapshots["month"].isin(train).to_numpy()
    is_valid = (snapshots["month"] == valid).to_numpy()
    is_test = (snapshots["month"] == test).to_numpy()
    print(
        f"train {train[0]}..{train[-1]} ({is_train.sum():,} rows), valid {valid} (XGBoost's early stop), "
        f"test {test} ({is_test.sum():,} rows)"
    )

    ratios = {}
    masks = (is_train, is_valid, is_test)
    print(f"\n{'model':24} {'metric':9} {'oracle':>7} {'xgboost':>8} {'ratio':>6} {'linear':>7} {'ratio':>6}")
    for name in args.tasks.split(","):
        o, tree, lin = evaluate(name, snapshots, oracle, labels, masks, args)
        ratios[f"{name}_xgb"] = round(tree / o, 3)
        ratios[f"{name}_linear"] = round(lin / o, 3)
        print(
            f"{name:24} {TASKS[name].kind.headline_label:9} {o:7.4f} {tree:8.4f} {tree / o:6.3f} {lin:7.4f} {lin / o:6.3f}"
        )

    names = args.tasks.split(",")
    xgb_ok = all(ratios[f"{n}_xgb"] >= XGB_TARGET for n in names)
    linear_below = sum(ratios[f"{n}_linear"] < LINEAR_TARGET for n in names)
    print(
        f"\nXGBoost >= {XGB_TARGET} on every model: {'yes' if xgb_ok else 'NO'}; "
        f"linear < {LINEAR_TARGET} on {linear_below} of {len(names)} (target >= 3)"
    )
    print(
        " ".join(f"{k}={v}" for k, v in ratios.items())
        + f" linear_below={linear_below} xgb_ok={int(xgb_ok)} churn_mean={dist['churn_mean']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
