"""Model quality in the business's terms, and as a fraction of the best achievable.

Every metric is computed twice on the same test month: for the model, and for the
generator's oracle probabilities. The model-to-oracle ratio of the headline metric is
the statement of model quality.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from training.model import predicted_grade  # noqa: E402
from training.tasks import SENSITIVITY_LEVELS, Task  # noqa: E402


def credit_metrics(true_grade: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Kappa and the credit specification's two error rates.

    Missed judgement: truly poor or extremely poor (1-2) graded good or excellent (4-5).
    Misjudgement: truly average or better (3-5) graded poor or extremely poor (1-2).
    """
    graded = predicted_grade(p)
    true_grade = true_grade.astype(int)
    poor, normal = true_grade <= 2, true_grade >= 3
    return {
        "quadratic_weighted_kappa": float(cohen_kappa_score(true_grade, graded, weights="quadratic")),
        "missed_judgement_rate": float((graded[poor] >= 4).mean()) if poor.any() else float("nan"),
        "misjudgement_rate": float((graded[normal] <= 2).mean()) if normal.any() else float("nan"),
        "exact_accuracy": float((graded == true_grade).mean()),
    }


def _level(scores: np.ndarray) -> np.ndarray:
    bounds = [b for b, _, _ in SENSITIVITY_LEVELS[1:]]
    return np.digitize(scores, bounds)


def score_metrics(true_score: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "spearman": float(spearmanr(true_score, predicted).statistic),
        "level_accuracy": float((_level(true_score) == _level(predicted)).mean()),
        "mae": float(np.abs(true_score - predicted).mean()),
    }


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    cut = np.quantile(p, 0.9)
    top = p >= cut
    return float(y[top].mean() / y.mean()) if y.mean() > 0 else float("nan")


def churn_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "top_decile_lift": top_decile_lift(y, p),
        "churn_rate": float(y.mean()),
    }


def channel_metrics(y: np.ndarray, p: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    y = y.astype(int)
    order = np.argsort(-p, axis=1)
    out = {
        "top1_accuracy": float((order[:, 0] == y).mean()),
        "top2_accuracy": float(((order[:, 0] == y) | (order[:, 1] == y)).mean()),
    }
    for k, c in enumerate(classes):
        mask = y == k
        out[f"recall_{c}"] = float((order[mask, 0] == k).mean()) if mask.any() else float("nan")
    return out


def metrics(t: Task, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """All of a task's metrics for labels ``y`` and predictions ``p`` (model or oracle)."""
    if t.kind == "ordinal":
        return credit_metrics(y, p)
    if t.kind == "score":
        return score_metrics(y, p)
    if t.kind == "binary":
        return churn_metrics(y, p)
    return channel_metrics(y, p, t.classes)


def oracle_predictions(t: Task, frame: pd.DataFrame) -> np.ndarray:
    """The oracle's probabilities (or expected score) in the model's output shape."""
    values = frame[list(t.oracle_columns)].to_numpy(dtype=float)
    return values[:, 0] if len(t.oracle_columns) == 1 else values


def has_oracle(t: Task, frame: pd.DataFrame) -> bool:
    """Whether the rows carry the generator's oracle (a province's own data does not)."""
    return all(c in frame.columns for c in t.oracle_columns) and not frame[list(t.oracle_columns)].isna().any().any()


def compare_with_oracle(t: Task, y: np.ndarray, model_p: np.ndarray, frame: pd.DataFrame) -> dict[str, float]:
    """Model metrics, oracle metrics on the same rows, and the headline ratio (NaN without an oracle)."""
    model = metrics(t, y, model_p)
    out = {f"test_{k}": v for k, v in model.items()}
    if not has_oracle(t, frame):
        out["oracle_ratio"] = float("nan")
        return out
    oracle = metrics(t, y, oracle_predictions(t, frame))
    out.update({f"oracle_{k}": v for k, v in oracle.items()})
    out["oracle_ratio"] = model[t.headline] / oracle[t.headline] if oracle[t.headline] else float("nan")
    return out


# -- plots for people who would rather look than read -----------------------------------

def plots(t: Task, y: np.ndarray, p: np.ndarray, oracle_p: np.ndarray | None, directory: Path) -> list[Path]:
    """The task's evaluation charts as PNG files (the oracle's curves when there is one); returns their paths."""
    compared = [("model", p)] + ([("oracle", oracle_p)] if oracle_p is not None else [])
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    if t.kind in ("ordinal", "multiclass"):
        labels = list(t.classes)
        predicted = predicted_grade(p) - 1 if t.kind == "ordinal" else p.argmax(axis=1)
        truth = y.astype(int) - 1 if t.kind == "ordinal" else y.astype(int)
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
        ax.set_title(f"{t.name_en}: confusion (row-normalised)")
        fig.colorbar(im)
        paths.append(_save(fig, directory / "confusion_matrix.png"))
    if t.kind == "binary":
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
        paths.append(_save(fig, directory / "roc_pr.png"))
        fig, ax = plt.subplots(figsize=(5, 4.5))
        frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, "o-", label="model")
        ax.plot([0, max(mean.max(), frac.max())], [0, max(mean.max(), frac.max())], "k:", lw=0.8)
        ax.set(title="Calibration", xlabel="predicted churn probability", ylabel="observed churn rate")
        ax.legend()
        paths.append(_save(fig, directory / "calibration.png"))
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, q in compared:
            deciles = pd.qcut(pd.Series(q).rank(method="first"), 10, labels=False)
            lift = pd.Series(y).groupby(deciles.to_numpy()).mean() / y.mean()
            ax.plot(range(10, 0, -1), lift.to_numpy(), "o-", label=name)
        ax.set(title="Lift by decile (10 = highest risk)", xlabel="decile", ylabel="churn rate / average")
        ax.legend()
        paths.append(_save(fig, directory / "lift_chart.png"))
    if t.kind == "score":
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.scatter(p, y, s=2, alpha=0.2, label="model")
        ax.plot([0, 100], [0, 100], "k:", lw=0.8)
        ax.set(title=f"{t.name_en}: predicted vs observed", xlabel="predicted score", ylabel="observed score")
        paths.append(_save(fig, directory / "calibration.png"))
    if t.kind == "ordinal":
        fig, ax = plt.subplots(figsize=(5, 4))
        observed = pd.Series(y.astype(int)).value_counts(normalize=True).sort_index()
        ax.bar(observed.index - 0.2, observed.to_numpy(), width=0.4, label="observed")
        ax.bar(np.arange(1, 6) + 0.2, p.mean(axis=0), width=0.4, label="mean predicted")
        ax.set(title="Grade calibration", xlabel="grade (1 extremely poor ... 5 excellent)", ylabel="share")
        ax.legend()
        paths.append(_save(fig, directory / "calibration.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
