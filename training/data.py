"""Training frames from Feast by a task's FeatureService, with a time-based split.

Labels and oracle probabilities come from the truth tables; indicators come from
Feast's point-in-time join at each label's snapshot time. Frames are cached per
feature contract and month set, so every trial and every model of an evaluation reuses
one Feast retrieval.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.io import atomic_write_parquet
from features.repo import service_name
from features.store import open_store, training_frame
from telcoml.errors import NotReadyError
from telcoml.settings import Settings
from training.tasks import Task


@dataclass(frozen=True)
class Split:
    """Months for training, validation (tuning, early stopping) and the held-out test."""

    train: tuple[str, ...]
    valid: str
    test: str

    @property
    def months(self) -> tuple[str, ...]:
        return (*self.train, self.valid, self.test)


def time_split(months: list[str], train_months: int = 4, test_month: str | None = None) -> Split:
    """Train on earlier months, validate on the next, test on the one after.

    By default the test month is the second-to-last: the last month's churn labels
    (closures in the month after) have not matured when the data is cut.
    """
    months = sorted(months)
    test = test_month or months[-2]
    if test not in months:
        raise NotReadyError(f"test month {test} has no labels; months with labels: {months}")
    i = months.index(test)
    if i < 2:
        raise NotReadyError(f"not enough months before the test month {test} to train and validate")
    # the first months have short 3- and 12-month windows; prefer later ones
    train = tuple(months[max(0, i - 1 - train_months):i - 1])
    return Split(train=train, valid=months[i - 1], test=test)


def load_truth(settings: Settings, kind: str, province: str | None = None) -> pd.DataFrame:
    """Labels or oracle probabilities of every province (or one)."""
    files = sorted((settings.truth_dir / kind).glob("*.parquet"))
    if province:
        files = [f for f in files if f.stem == province.upper()]
    if not files:
        raise NotReadyError(f"no {kind} in {settings.truth_dir / kind}"
                            + (f" for province {province}" if province else "") + ": run `telcoml generate`")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def encode(frame: pd.DataFrame, t: Task) -> pd.DataFrame:
    """Indicators as the model reads them: categories with the library's fixed codes."""
    out = pd.DataFrame(index=frame.index)
    for ind in t.indicators:
        column = frame[ind.id]
        if ind.kind == "category":
            out[ind.id] = pd.Categorical(column.astype(object).where(column.notna(), None), categories=list(ind.codes))
        else:
            out[ind.id] = pd.to_numeric(column, errors="coerce").astype(float)
    return out


def _cache_path(settings: Settings, service: str, months: tuple[str, ...], province: str | None) -> Path:
    key = hashlib.sha1(f"{service}|{','.join(months)}|{province}".encode()).hexdigest()[:12]
    return settings.workdir / "training" / "frames" / f"{service}-{key}.parquet"


def evaluation_frame(settings: Settings, t: Task, split: Split, province: str | None = None) -> pd.DataFrame:
    """Labels, oracle and indicators for the split's months (cached per feature contract)."""
    service = service_name(t.evaluation)
    path = _cache_path(settings, service, split.months, province)
    if path.exists():
        return pd.read_parquet(path)
    labels = load_truth(settings, "labels", province)
    oracle = load_truth(settings, "oracle", province)
    labels = labels[labels["month"].isin(split.months)]
    if labels.empty:
        raise NotReadyError(f"no labels for months {split.months}")
    keys = ["msisdn", "event_timestamp"]
    truth = labels.merge(oracle.drop(columns=["province", "month"]), on=keys, how="left")
    entity = truth[keys].copy()
    entity["event_timestamp"] = pd.to_datetime(entity["event_timestamp"], utc=True)
    features = training_frame(open_store(settings), entity, t.evaluation)
    features["event_timestamp"] = pd.to_datetime(features["event_timestamp"], utc=True)
    truth["event_timestamp"] = pd.to_datetime(truth["event_timestamp"], utc=True)
    frame = truth.merge(features, on=keys, how="inner")
    atomic_write_parquet(frame, path)
    return frame


@dataclass
class Dataset:
    """One task's encoded matrices for the three parts of the split."""

    task: Task
    split: Split
    X: dict[str, pd.DataFrame]
    y: dict[str, np.ndarray]
    frames: dict[str, pd.DataFrame]  # the raw rows: keys, labels, oracle, indicators
    lineage: dict


def target(frame: pd.DataFrame, t: Task) -> np.ndarray:
    """The label as XGBoost reads it (class index for channels, 0/1, score, grade)."""
    if t.kind == "multiclass":
        return frame[t.label].map({c: k for k, c in enumerate(t.classes)}).to_numpy(dtype=float)
    return frame[t.label].to_numpy(dtype=float)


def make_dataset(settings: Settings, t: Task, split: Split, province: str | None = None) -> Dataset:
    """Encoded train/valid/test matrices for a task, with the data's lineage."""
    frame = evaluation_frame(settings, t, split, province)
    parts = {"train": frame[frame["month"].isin(split.train)], "valid": frame[frame["month"] == split.valid],
             "test": frame[frame["month"] == split.test]}
    for name, part in parts.items():
        if part.empty:
            raise NotReadyError(f"the {name} part of the split {split} has no rows for {t.name}")
    lineage = {
        "feature_service": service_name(t.evaluation),
        "indicators": t.feature_names,
        "train_months": list(split.train), "valid_month": split.valid, "test_month": split.test,
        "province": province or "all",
        "rows": {k: int(len(v)) for k, v in parts.items()},
        "offline_store": str(settings.offline_dir),
        "truth": str(settings.truth_dir),
    }
    return Dataset(
        task=t, split=split,
        X={k: encode(v, t).reset_index(drop=True) for k, v in parts.items()},
        y={k: target(v, t) for k, v in parts.items()},
        frames={k: v.reset_index(drop=True) for k, v in parts.items()},
        lineage=lineage,
    )


__all__ = ["Split", "time_split", "make_dataset", "Dataset", "encode", "load_truth", "evaluation_frame"]
