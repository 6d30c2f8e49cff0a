"""Training frames from Feast by a task's FeatureService, split by month or by customer.

Labels and oracle probabilities come from the truth tables; indicators come from
Feast's point-in-time join at each label's snapshot time. Frames are cached per
feature contract and month set, so every trial and every model of an evaluation reuses
one Feast retrieval; the cache is keyed by the input files too, so regenerated or
rebuilt data is never trained on from an old frame.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core import indicators as lib
from core.errors import NotReadyError
from core.io import atomic_write_parquet
from core.settings import Settings
from core.tasks import Task
from features.build import offline_file, offline_snapshots
from features.store import open_store, training_frame

if TYPE_CHECKING:
    from features.outcomes import CreditOutcome

#: With fewer labelled months than this, the split is by customer instead of by month.
MIN_TIME_SPLIT_MONTHS = 3
#: Shares of customers in the train, valid and test parts of a split by customer.
CUSTOMER_SHARES = (0.6, 0.2, 0.2)
#: The parts of a split, in order.
PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """Which labelled rows train, validate (tuning, early stopping, calibration) and test.

    ``time``: train on earlier months, validate on the next, test on the one after (a
    customer's later months may be in later parts: that is the future the model will meet).
    ``customer``: with fewer than ``MIN_TIME_SPLIT_MONTHS`` labelled months, the customers
    of those months are divided into train, valid and test (``CUSTOMER_SHARES``), in
    proportion within each label stratum (``Kind.strata``); every row of a customer goes to
    the same part, so no customer is on both sides.
    """

    train: tuple[str, ...]
    valid: str
    test: str
    method: str = "time"
    seed: int = 7

    @property
    def months(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.train, self.valid, self.test)))

    @property
    def tag(self) -> str:
        """What names the held-out part in a study's name: the test month, or the customer split."""
        return self.test if self.method == "time" else f"customers-{self.test}"

    def describe(self) -> dict[str, str]:
        """The split as MLflow parameters."""
        if self.method == "time":
            return {
                "split": "time",
                "train_months": ",".join(self.train),
                "valid_month": self.valid,
                "test_month": self.test,
            }
        shares = "/".join(f"{s:.0%}" for s in CUSTOMER_SHARES)
        return {"split": f"customer (stratified, {shares})", "months": ",".join(self.months)}

    def parts(self, frame: pd.DataFrame, t: Task) -> dict[str, pd.DataFrame]:
        """The labelled rows of each part: ``train``, ``valid``, ``test``."""
        if self.method == "time":
            return {
                "train": frame[frame["month"].isin(self.train)],
                "valid": frame[frame["month"] == self.valid],
                "test": frame[frame["month"] == self.test],
            }
        part = customer_parts(frame, t, CUSTOMER_SHARES, self.seed)
        return {name: frame[part == k] for k, name in enumerate(PARTS)}


def customer_parts(frame: pd.DataFrame, t: Task, shares: tuple[float, ...], seed: int = 7) -> np.ndarray:
    """Each row's part (0, 1, ... by ``shares``), customers shuffled within their stratum of
    the label (their latest month's), so each part has the strata in proportion."""
    stratum = pd.Series(t.kind.strata(t.kind.encode_label(frame[t.label])), index=frame.index)
    latest = (
        pd.DataFrame(
            {
                "msisdn": frame["msisdn"].to_numpy(),
                "month": frame["month"].to_numpy(),
                "stratum": stratum.to_numpy(),
            }
        )
        .sort_values(["month", "msisdn"], kind="stable")
        .groupby("msisdn", sort=True)["stratum"]
        .last()
    )
    rng = np.random.default_rng(seed)
    bounds = np.cumsum(shares)[:-1] / np.sum(shares)
    part_of: dict[str, int] = {}
    for _, customers in latest.groupby(latest, sort=True):
        ids = rng.permutation(customers.index.to_numpy())
        cuts = np.rint(bounds * len(ids)).astype(int)
        for k, chunk in enumerate(np.split(ids, cuts)):
            part_of.update(dict.fromkeys(chunk.tolist(), k))
    return frame["msisdn"].map(part_of).to_numpy()


def time_split(months: list[str], train_months: int = 4, test_month: str | None = None) -> Split:
    """Train on earlier months, validate on the next, test on the one after.

    By default the test month is the second-to-last: the last month's churn labels
    (closures in the month after) have not matured when the data is cut. With three
    labelled months it is the last, so that a month is left to train and one to validate.
    """
    months = sorted(months)
    test = test_month or (months[-2] if len(months) > MIN_TIME_SPLIT_MONTHS else months[-1])
    if test not in months:
        raise NotReadyError(f"test month {test} has no labels; months with labels: {months}")
    i = months.index(test)
    if i < 2:
        raise NotReadyError(f"not enough months before the test month {test} to train and validate")
    # the latest months before validation: the customers most like those the model will serve
    train = tuple(months[max(0, i - 1 - train_months) : i - 1])
    return Split(train=train, valid=months[i - 1], test=test)


def choose_split(
    months: list[str], train_months: int = 4, test_month: str | None = None, seed: int = 7
) -> Split:
    """By month with ``MIN_TIME_SPLIT_MONTHS`` or more labelled months, by customer with fewer
    (a province's first export is often a single month); an asked-for test month needs the
    split by month. An asked-for test month after the task's last labelled month (an outcome
    that matures later, like the credit outcome's three months) leaves the task its own
    default: every one of its labelled months comes before the asked-for one."""
    months = sorted(months)
    if test_month and months and test_month > months[-1]:
        test_month = None
    if len(months) >= MIN_TIME_SPLIT_MONTHS or test_month:
        return time_split(months, train_months, test_month)
    if not months:
        raise NotReadyError("no labelled months: nothing to train on")
    return Split(train=tuple(months), valid=months[-1], test=months[-1], method="customer", seed=seed)


def _by_province(directory: Path) -> dict[str, Path]:
    return {f.stem.upper(): f for f in sorted(directory.glob("*.parquet"))}


def label_files(settings: Settings, province: str | None = None) -> dict[str, tuple[Path, bool]]:
    """Each province's label file and whether it is the province's own (``telcoml byod``, in
    ``labels/``, read instead of the generator's truth)."""
    own = _by_province(settings.labels_dir)
    files = {k: (v, False) for k, v in _by_province(settings.truth_dir / "labels").items()}
    files.update({k: (v, True) for k, v in own.items()})
    if province:
        files = {k: v for k, v in files.items() if k == province.upper()}
    if not files:
        raise NotReadyError(
            f"no labels in {settings.truth_dir / 'labels'} or {settings.labels_dir}"
            + (f" for province {province}" if province else "")
            + ": run `telcoml generate`, or `telcoml byod` with label columns in the mapping"
        )
    return files


def load_labels(settings: Settings, province: str | None = None) -> pd.DataFrame:
    """Labels of every province (or one). A province that brought its own data and labels
    (``telcoml byod``, in ``labels/``) is read from there instead of the generator's truth.
    A province file defining the credit outcome otherwise (``credit_outcome:``) has it
    computed from the province's credit events with its definition."""
    return pd.concat(
        [
            pd.read_parquet(f) if own else with_province_outcome(settings, code, pd.read_parquet(f))
            for code, (f, own) in label_files(settings, province).items()
        ],
        ignore_index=True,
    )


def labels_if_any(settings: Settings, province: str | None = None) -> pd.DataFrame:
    """``load_labels``, or an empty frame when there are none (a province may bring indicators
    only: its credit scorecard needs no labels)."""
    try:
        return load_labels(settings, province)
    except NotReadyError:
        return pd.DataFrame()


def own_outcome(settings: Settings, province: str) -> CreditOutcome | None:
    """The province file's own definition of the credit outcome, or None under the group's default."""
    from features.outcomes import DEFAULT_OUTCOME
    from features.provinces import load_province

    config = load_province(settings, province)
    return None if config is None or config.credit_outcome == DEFAULT_OUTCOME else config.credit_outcome


def with_province_outcome(settings: Settings, province: str, labels: pd.DataFrame) -> pd.DataFrame:
    """A province's labels with the credit outcome of its province file's definition, from its
    raw credit events (the labels as they are under the group's default, or without events)."""
    from features.build import warehouse_months
    from features.outcomes import OUTCOME_COLUMN, credit_bad_event
    from features.schemas import partition_path

    definition = own_outcome(settings, province)
    if definition is None or OUTCOME_COLUMN not in labels:
        return labels
    months = warehouse_months(settings.raw_dir, province)
    paths = [partition_path(settings.raw_dir, "credit_events", province, m) for m in months]
    events = [pd.read_parquet(path) for path in paths if path.exists()]
    if not months or not events:
        return labels
    events = pd.concat(events, ignore_index=True)
    outcome = credit_bad_event(labels, events, months[-1], definition)
    return labels.assign(**{OUTCOME_COLUMN: outcome.to_numpy()})


def oracle_files(settings: Settings, province: str | None = None) -> dict[str, Path]:
    """The generator's true probabilities per province, for provinces whose labels are the
    generator's (a province's own data has none)."""
    own = _by_province(settings.labels_dir)
    return {
        k: v
        for k, v in _by_province(settings.truth_dir / "oracle").items()
        if k not in own and (not province or k == province.upper())
    }


def load_oracle(settings: Settings, province: str | None = None) -> pd.DataFrame | None:
    """The generator's true probabilities, for provinces whose labels are the generator's; None
    when there is no oracle (a province's own data has none)."""
    files = oracle_files(settings, province)
    return pd.concat([pd.read_parquet(f) for f in files.values()], ignore_index=True) if files else None


def load_truth(settings: Settings, kind: str, province: str | None = None) -> pd.DataFrame:
    """Labels or oracle probabilities of every province (or one)."""
    if kind == "labels":
        return load_labels(settings, province)
    oracle = load_oracle(settings, province)
    if oracle is None:
        raise NotReadyError(
            f"no oracle in {settings.truth_dir / 'oracle'}"
            + (f" for province {province}" if province else "")
        )
    return oracle


def label_months(labels: pd.DataFrame, t: Task) -> list[str]:
    """Months with labels for the task (a province's own data may lack some tasks' labels)."""
    if t.label not in labels.columns or labels[t.label].isna().all():
        raise NotReadyError(f"no {t.label} labels for {t.name}: nothing to train it on")
    return sorted(labels.loc[labels[t.label].notna(), "month"].unique())


def encode(frame: pd.DataFrame, t: Task) -> pd.DataFrame:
    """Indicators as the model reads them: numbers as floats, categories with the library's
    codes (``core.indicators.encoded``, as serving encodes them)."""
    out = pd.DataFrame(index=frame.index)
    for ind in t.indicators:
        values = lib.encoded(ind, frame[ind.id])
        if ind.kind == "category":
            codes = np.where(np.isnan(values), -1, values).astype(int)
            out[ind.id] = pd.Categorical.from_codes(codes, categories=list(ind.codes))
        else:
            out[ind.id] = values
    return out


def inputs_fingerprint(settings: Settings) -> str:
    """A digest of every indicator snapshot, label, oracle and province file (path, size,
    modification time)."""
    digest = hashlib.sha1()
    # province files tailor indicators and may define the credit outcome otherwise
    for root, pattern in (
        (settings.offline_dir, "*.parquet"),
        (settings.truth_dir, "*.parquet"),
        (settings.labels_dir, "*.parquet"),
        (settings.provinces_dir, "*.yaml"),
    ):
        for path in sorted(root.rglob(pattern)) if root.exists() else []:
            stat = path.stat()
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def _cache_path(settings: Settings, service: str, months: tuple[str, ...], province: str | None) -> Path:
    """``training/frames/<inputs>/<service>-<key>.parquet``; frames of older inputs are removed."""
    frames = settings.workdir / "training" / "frames"
    current = frames / inputs_fingerprint(settings)
    if frames.exists():
        for stale in frames.iterdir():  # built from data that has since been regenerated or rebuilt
            if stale != current and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            elif stale != current:  # a frame cached before frames were kept by fingerprint
                stale.unlink(missing_ok=True)
    key = hashlib.sha1(f"{service}|{','.join(months)}|{province}".encode()).hexdigest()[:12]
    return current / f"{service}-{key}.parquet"


def evaluation_frame(settings: Settings, t: Task, split: Split, province: str | None = None) -> pd.DataFrame:
    """Labels, oracle and indicators for the split's months (cached per feature contract)."""
    path = _cache_path(settings, t.service, split.months, province)
    if path.exists():
        return pd.read_parquet(path)
    labels = load_labels(settings, province)
    labels = labels[labels["month"].isin(split.months)]
    if labels.empty:
        raise NotReadyError(f"no labels for months {split.months}")
    keys = ["msisdn", "event_timestamp"]
    labels = labels.assign(event_timestamp=pd.to_datetime(labels["event_timestamp"], utc=True))
    oracle = load_oracle(settings, province)
    truth = labels
    if oracle is not None:
        oracle = oracle.assign(event_timestamp=pd.to_datetime(oracle["event_timestamp"], utc=True))
        truth = labels.merge(oracle.drop(columns=["province", "month"]), on=keys, how="left")
    entity = truth[keys].copy()
    features = training_frame(open_store(settings), entity, t.evaluation, t.province)
    features["event_timestamp"] = pd.to_datetime(features["event_timestamp"], utc=True)
    truth["event_timestamp"] = pd.to_datetime(truth["event_timestamp"], utc=True)
    # the labels carry the province too (the feature store's is the same, read as a model input)
    frame = truth.merge(
        features.drop(columns=[c for c in truth.columns if c in features and c not in keys]), on=keys
    )
    atomic_write_parquet(frame, path)
    return frame


def snapshot_months(settings: Settings, province: str | None = None) -> list[str]:
    """Months with an indicator snapshot (of one province, or of any)."""
    return sorted(
        {m for _, m in offline_snapshots(settings.offline_dir, "profile", (province or "*").upper())}
    )


def snapshot_provinces(settings: Settings, month: str, province: str | None = None) -> list[str]:
    """The provinces (one, or every one) with an indicator snapshot of ``month``."""
    provinces = [
        p for p, _ in offline_snapshots(settings.offline_dir, "profile", (province or "*").upper(), month)
    ]
    if not provinces:
        raise NotReadyError(
            f"no indicator snapshot of {month}"
            + (f" for province {province}" if province else "")
            + ": run `telcoml build` (or `telcoml byod`)"
        )
    return provinces


def snapshot_frame(settings: Settings, t: Task, month: str, province: str | None = None) -> pd.DataFrame:
    """Every customer of a month's snapshot (of one province, or of all) with the task's indicators
    from Feast at the snapshot time, labels or not: what a model without labels is fitted on."""
    provinces = snapshot_provinces(settings, month, province)
    keys = ["msisdn", "event_timestamp"]
    entity = pd.concat(
        [
            pd.read_parquet(offline_file(settings.offline_dir, "profile", p, month), columns=keys).assign(
                province=p
            )
            for p in provinces
        ],
        ignore_index=True,
    )
    if "province" in t.feature_names:  # Feast brings it: a second column of the name breaks its join
        entity = entity.drop(columns="province")
    entity["event_timestamp"] = pd.to_datetime(entity["event_timestamp"], utc=True)
    frame = training_frame(open_store(settings), entity, t.evaluation, t.province)
    frame["month"] = month
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)  # whatever the join's order


@dataclass
class Dataset:
    """One task's encoded matrices for the three parts of the split."""

    task: Task
    split: Split
    X: dict[str, pd.DataFrame]
    y: dict[str, np.ndarray]
    frames: dict[str, pd.DataFrame]  # the raw rows: keys, labels, oracle, indicators
    lineage: dict
    #: The Spark path: every labelled row, persisted by Spark (``training.spark_rows.SparkRows``);
    #: ``X``, ``y`` and ``frames`` then hold the driver's sample of them.
    spark_rows: object | None = None

    @property
    def rows(self) -> dict[str, int]:
        """Labelled rows per part: all of them, also when the matrices hold a sample."""
        return self.lineage["rows"]

    @property
    def test_basis(self) -> str:
        """What a test score is measured on: the held-out part, or the driver's sample of it."""
        tested, held_out = len(self.y["test"]), self.rows["test"]
        return "held-out part" if tested == held_out else f"{tested:,} of the {held_out:,} held-out rows"

    def stacked(self, parts: tuple[str, ...] = PARTS) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
        """The raw rows, the encoded matrix and the label of ``parts``, one below the other."""
        return (
            pd.concat([self.frames[k] for k in parts], ignore_index=True),
            pd.concat([self.X[k] for k in parts], ignore_index=True),
            np.concatenate([self.y[k] for k in parts]),
        )


@contextmanager
def held(data: Dataset) -> Iterator[Dataset]:
    """``data`` while a task trains; the Spark path's persisted rows are released after."""
    try:
        yield data
    finally:
        if data.spark_rows is not None:
            data.spark_rows.release()


def target(frame: pd.DataFrame, t: Task) -> np.ndarray:
    """The label as XGBoost reads it (the task's kind encodes it)."""
    return t.kind.encode_label(frame[t.label])


def make_dataset(settings: Settings, t: Task, split: Split, province: str | None = None) -> Dataset:
    """Encoded train/valid/test matrices for a task, with the data's lineage."""
    frame = evaluation_frame(settings, t, split, province)
    if t.label not in frame.columns:
        raise NotReadyError(f"no {t.label} labels for {t.name}: nothing to train it on")
    frame = frame[frame[t.label].notna()]  # a province's own data may label some customers only
    parts = split.parts(frame, t)
    for name, part in parts.items():
        if part.empty:
            raise NotReadyError(f"the {name} part of the split {split} has no rows for {t.name}")
    return dataset_of(settings, t, split, parts, province)


def dataset_of(
    settings: Settings,
    t: Task,
    split: Split,
    parts: dict[str, pd.DataFrame],
    province: str | None = None,
    rows: dict[str, int] | None = None,
) -> Dataset:
    """The ``Dataset`` of a split's labelled rows; ``rows``: the parts' whole sizes when
    ``parts`` are a sample of them (the Spark path's driver sample), recorded in the lineage
    beside the sample's (``driver_rows``)."""
    own_labels = (settings.labels_dir / f"{(province or '').upper()}.parquet").exists()
    labels = settings.labels_dir if own_labels else settings.truth_dir
    sampled = {k: int(len(v)) for k, v in parts.items()}
    lineage = {
        "feature_service": t.service,
        "indicators": t.feature_names,
        "split": split.method,
        "train_months": list(split.train),
        "valid_month": split.valid,
        "test_month": split.test,
        "province": province or "all",
        "rows": rows or sampled,
        # folders of the work directory, relative to it: the lineage holds when it moves
        "offline_store": settings.offline_dir.relative_to(settings.workdir).as_posix(),
        "labels": labels.relative_to(settings.workdir).as_posix(),
    }
    if rows is not None:
        lineage["driver_rows"] = sampled
    return Dataset(
        task=t,
        split=split,
        X={k: encode(v, t).reset_index(drop=True) for k, v in parts.items()},
        y={k: target(v, t) for k, v in parts.items()},
        frames={k: v.reset_index(drop=True) for k, v in parts.items()},
        lineage=lineage,
    )


__all__ = [
    "Split",
    "time_split",
    "choose_split",
    "customer_parts",
    "make_dataset",
    "dataset_of",
    "held",
    "Dataset",
    "PARTS",
    "label_files",
    "oracle_files",
    "own_outcome",
    "with_province_outcome",
    "encode",
    "load_truth",
    "load_labels",
    "labels_if_any",
    "load_oracle",
    "label_months",
    "evaluation_frame",
    "snapshot_frame",
    "snapshot_provinces",
    "snapshot_months",
]
