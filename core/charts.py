"""Evaluation charts for people who would rather look than read, one function per chart.

The kinds (``core.kinds``) choose which charts a model gets; training logs them to
MLflow. Imported only when charts are drawn, so nothing that scores loads matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def confusion(task, truth: np.ndarray, predicted: np.ndarray, directory: Path) -> Path:
    """Row-normalised confusion matrix over the task's classes (indices 0..k-1)."""
    from sklearn.metrics import confusion_matrix

    labels = list(task.classes)
    cm = confusion_matrix(truth, predicted, labels=range(len(labels)), normalize="true")
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{task.name_en}: confusion (row-normalised)")
    fig.colorbar(im)
    return _save(fig, directory / "confusion_matrix.png")


def grade_calibration(y: np.ndarray, p: np.ndarray, directory: Path) -> Path:
    """Observed grade shares beside the mean predicted probability of each grade."""
    fig, ax = plt.subplots(figsize=(5, 4))
    observed = pd.Series(y.astype(int)).value_counts(normalize=True).sort_index()
    ax.bar(observed.index - 0.2, observed.to_numpy(), width=0.4, label="observed")
    ax.bar(np.arange(1, p.shape[1] + 1) + 0.2, p.mean(axis=0), width=0.4, label="mean predicted")
    ax.set(title="Grade calibration", xlabel="grade (1 extremely poor ... 5 excellent)", ylabel="share")
    ax.legend()
    return _save(fig, directory / "calibration.png")


def score_scatter(task, y: np.ndarray, p: np.ndarray, directory: Path) -> Path:
    """Predicted against observed score."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(p, y, s=2, alpha=0.2, label="model")
    ax.plot([0, 100], [0, 100], "k:", lw=0.8)
    ax.set(title=f"{task.name_en}: predicted vs observed", xlabel="predicted score", ylabel="observed score")
    return _save(fig, directory / "calibration.png")


def binary(task, y: np.ndarray, p: np.ndarray, oracle_p: np.ndarray | None, directory: Path) -> list[Path]:
    """ROC and precision-recall (model and oracle), calibration, lift by decile."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    compared = [("model", p)] + ([("oracle", oracle_p)] if oracle_p is not None else [])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, q in compared:
        fpr, tpr, _ = roc_curve(y, q)
        axes[0].plot(fpr, tpr, label=f"{name} AUC={roc_auc_score(y, q):.3f}")
        prec, rec, _ = precision_recall_curve(y, q)
        axes[1].plot(rec, prec, label=f"{name} AP={average_precision_score(y, q):.3f}")
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8)
    axes[0].set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    axes[1].set(title="Precision-recall", xlabel="recall", ylabel="precision")
    for ax in axes:
        ax.legend()
    paths = [_save(fig, directory / "roc_pr.png")]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
    ax.plot(mean, frac, "o-", label="model")
    ax.plot([0, max(mean.max(), frac.max())], [0, max(mean.max(), frac.max())], "k:", lw=0.8)
    ax.set(
        title="Calibration", xlabel=f"predicted {task.name_en.lower()} probability", ylabel="observed rate"
    )
    ax.legend()
    paths.append(_save(fig, directory / "calibration.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, q in compared:
        deciles = pd.qcut(pd.Series(q).rank(method="first"), 10, labels=False)
        lift = pd.Series(y).groupby(deciles.to_numpy()).mean() / y.mean()
        ax.plot(range(10, 0, -1), lift.to_numpy(), "o-", label=name)
    ax.set(title="Lift by decile (1 = highest risk)", xlabel="decile", ylabel="rate / average")
    ax.legend()
    paths.append(_save(fig, directory / "lift_chart.png"))
    return paths


def grade_event_rates(task, y: np.ndarray, graded: np.ndarray, directory: Path) -> Path:
    """The share of each grade's customers a bad event followed: it should fall from grade 1 to 5."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    grades = np.arange(1, len(task.classes) + 1)
    rates = [y[graded == g].mean() if (graded == g).any() else np.nan for g in grades]
    counts = [int((graded == g).sum()) for g in grades]
    ax.bar(grades, rates, color="#3182bd")
    for g, r, n in zip(grades, rates, counts):
        if np.isfinite(r):
            ax.text(g, r, f"{r:.1%}\nn={n}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(grades)
    ax.set_xlabel("credit grade (1 worst .. 5 best)")
    ax.set_ylabel("share with a bad credit event after")
    ax.set_title(f"{task.name_en}: outcome by grade")
    return _save(fig, directory / "event_rate_by_grade.png")


def scorecard(
    weights: dict[str, float], prior: dict[str, float], score: np.ndarray, cutoffs, directory: Path
) -> Path:
    """The credit scorecard at a glance: each indicator's weight (the method's and the final one)
    beside the distribution of the 0-100 score with the grade cut-offs."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    order = sorted(weights, key=weights.get)
    y = np.arange(len(order))
    left.barh(y - 0.2, [prior.get(i, 0.0) for i in order], height=0.4, label="method", color="#9ecae1")
    left.barh(y + 0.2, [weights[i] for i in order], height=0.4, label="final", color="#3182bd")
    left.set_yticks(y, order, fontsize=8)
    left.set_xlabel("weight")
    left.set_title("Indicator weights")
    left.legend(loc="lower right")
    right.hist(score, bins=40, color="#bdbdbd")
    for cut in cutoffs:
        right.axvline(cut, color="#de2d26", linestyle="--", linewidth=1)
    right.set_xlabel("credit score (0-100), grade cut-offs dashed")
    right.set_title("Score distribution")
    fig.tight_layout()
    return _save(fig, directory / "scorecard.png")


def campaign_response(
    overall: dict, by_segment: pd.DataFrame, by_count: pd.DataFrame, best: int | None, directory: Path
) -> Path:
    """Left: the uplift (contacted minus control take-up) per best channel and overall, with its
    interval. Right: acceptances and objections per attempt by the n-th contact in 90 days, the
    best contact frequency marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rows = [("all", overall)] + [(r["best_channel"], r) for r in by_segment.to_dict("records")]
    rows = [(name, r) for name, r in rows if r.get("uplift") is not None]
    if rows:
        y = np.arange(len(rows))[::-1]
        mid = np.array([r["uplift"] for _, r in rows]) * 100
        err = np.array([[r["uplift"] - r["low"], r["high"] - r["uplift"]] for _, r in rows]).T * 100
        left.errorbar(mid, y, xerr=err, fmt="o", color="#2171b5", capsize=4)
        left.set_yticks(y, [f"{name} (n={r['contacted']:,}+{r['control']:,})" for name, r in rows])
    left.axvline(0, color="grey", linewidth=1)
    left.set_xlabel("uplift, percentage points (95% interval)")
    left.set_title("Take-up: contacted minus control")
    if len(by_count):
        right.plot(by_count["contact_number"], by_count["acceptance_rate"] * 100, "o-", label="accepted")
        right.plot(
            by_count["contact_number"],
            by_count["objection_rate"] * 100,
            "s-",
            color="#de2d26",
            label="objected",
        )
        if best is not None:
            right.axvline(best, color="#31a354", linestyle="--", label=f"best frequency: {best}")
        right.legend()
    right.set_xlabel("n-th contact in 90 days")
    right.set_ylabel("% of attempts")
    right.set_title("Answers by contact frequency")
    return _save(fig, directory / "campaign_response.png")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
