"""The production profile's training rows as Spark jobs; the driver holds a bounded sample only.

With ``TELCOML_ENGINE=spark`` a task's labelled rows never come whole to the driver:

- the labels (and the generator's oracle) of the split's months are read by Spark from the
  provinces' label files (``labels_frame``);
- their indicators come from **Feast's Spark offline store**: its point-in-time join over the
  registered feature service, the views read from the same offline files
  (``indicator_frame``);
- each row is marked with its part of the split (``PART``: train, valid, test), persisted by
  Spark, and counted per part (``spark_rows``).

The driver then collects a **sample of whole customers** (``driver_sample``): at most
``TELCOML_SPARK_TUNING_SAMPLE`` training rows and a quarter as many validating rows, which
Optuna tunes on, and at most ``TELCOML_SPARK_EVALUATION_SAMPLE`` held-out rows, which the
candidate, the baselines and the monitoring reference are measured on. The fits that make the
registered model read every row from Spark (``SparkRows.encoded``, ``training.distributed``).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from core.errors import NotReadyError
from core.spark import session_setting, spark_session
from core.tasks import Task
from features.store import feature_service, open_store, require_own_sources
from training.data import (
    CUSTOMER_SHARES,
    PARTS,
    Dataset,
    Split,
    customer_parts,
    dataset_of,
    encode,
    label_files,
    oracle_files,
    own_outcome,
    snapshot_provinces,
    target,
)
from training.distributed import LABEL, VALIDATION, numeric

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from core.settings import Settings
    from features.outcomes import CreditOutcome

KEYS = ["msisdn", "event_timestamp"]
#: Each row's part of the split: train, valid or test.
PART = "split_part"
#: Spark reads Parquet's nanosecond timestamps (the generator's, pandas') only as numbers.
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
#: Set by Feast's Spark offline store on the session; the session's own after its join.
QUOTED_REGEX = "spark.sql.parser.quotedRegexColumnNames"
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
ARROW = "spark.sql.execution.arrow.pyspark.enabled"
#: Label rows per partition of the joined, persisted rows (a partition is read back whole: at
#: 1M subscribers, four partitions of 1.5M rows each overflowed a 2 GiB driver heap).
ROWS_PER_PARTITION = 100_000
#: Hash buckets that a sample of whole customers is drawn from.
SAMPLE_BUCKETS = 1_000_000
#: The column of a customer's group when a province's own credit outcome is computed.
GROUP = "customer_group"


@dataclass
class SparkRows:
    """One task's labelled rows with their indicators, as a persisted Spark DataFrame."""

    frame: DataFrame  # labels, oracle, indicators, PART
    rows: dict[str, int]  # rows per part, counted by Spark

    def encoded(self, t: Task, parts: tuple[str, ...], validating: tuple[str, ...] = ()) -> DataFrame:
        """The rows of ``parts`` as the fits read them: one float column per indicator (a category
        by its library code, as ``training.data.encode`` and serving give it), the label as the
        task's kind encodes it, and whether the row validates (``validating`` parts)."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import BooleanType, DoubleType, StructField, StructType

        schema = StructType(
            [StructField(c, DoubleType()) for c in t.feature_names]
            + [StructField(LABEL, DoubleType()), StructField(VALIDATION, BooleanType())]
        )
        wanted = self.frame.filter(F.col(PART).isin(list(parts))).select(*t.feature_names, t.label, PART)

        def batches(frames):
            for frame in frames:
                out = numeric(encode(frame, t))
                out[LABEL] = target(frame, t)
                out[VALIDATION] = frame[PART].isin(validating).to_numpy()
                yield out

        return wanted.mapInPandas(batches, schema)

    def release(self) -> None:
        """Drop the persisted rows (the task's training is over)."""
        self.frame.unpersist()


@dataclass
class Snapshot:
    """A month's snapshot customers collected to the driver (all of them, or a sample)."""

    frame: pd.DataFrame  # keys, province, the task's indicators, month
    customers: int  # the snapshot's customers, every one
    share: float  # the share of them drawn (by the seeded hash of the phone number)
    labels: pd.DataFrame | None  # the drawn customers' credit outcome that month, if asked and labelled


def _timestamps(frame: DataFrame) -> DataFrame:
    """``event_timestamp`` as a Spark timestamp, whether the file held it in micro- or nanoseconds."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    if isinstance(frame.schema["event_timestamp"].dataType, LongType):  # nanoseconds, NANOS_AS_LONG
        return frame.withColumn(
            "event_timestamp", F.timestamp_micros(F.floor(F.col("event_timestamp") / 1000))
        )
    return frame


def _utc(column: pd.Series) -> pd.Series:
    """Timestamps collected from Spark (its session's zone is UTC) as UTC pandas timestamps."""
    stamps = pd.to_datetime(column)
    return stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps


def _stacked(frames: list[DataFrame]) -> DataFrame:
    """Provinces' frames one below the other, by column name (a column one lacks: empty there)."""
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def province_labels(
    spark: SparkSession, settings: Settings, province: str | None, outcome: bool = True
) -> DataFrame:
    """Every province's (or one's) label rows, read by Spark; a province whose file defines its
    own credit outcome has it computed from its raw credit events (``own_credit_outcome``), or,
    when the reader does not need the outcome (``outcome=False``: another task's labels), left
    out rather than computed."""
    from features.outcomes import OUTCOME_COLUMN

    spark.conf.set(NANOS_AS_LONG, "true")
    frames = []
    for code, (path, own) in label_files(settings, province).items():
        labels = _timestamps(spark.read.parquet(str(path)))
        definition = None if own else own_outcome(settings, code)
        if definition and outcome:
            labels = own_credit_outcome(spark, settings, code, labels, definition)
        elif definition:  # the group's default outcome is not this province's: not carried
            labels = labels.drop(OUTCOME_COLUMN)
        frames.append(labels)
    return _stacked(frames)


def _reads_outcome(t: Task) -> bool:
    """Whether a task's rows need the credit outcome (its label)."""
    from features.outcomes import OUTCOME_COLUMN

    return t.label == OUTCOME_COLUMN


def own_credit_outcome(
    spark: SparkSession, settings: Settings, province: str, labels: DataFrame, definition: CreditOutcome
) -> DataFrame:
    """A province's labels with the credit outcome of its own definition, computed by Spark from
    its raw credit events: the embedded path's own ``features.outcomes.credit_bad_event`` on
    groups of whole customers (a hash of the phone number; the outcome is a customer's own),
    labels and events of a group side by side (``cogroup``), so no machine holds the
    province's events. Unchanged without events (as ``training.data.with_province_outcome``)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    from features.build import warehouse_months
    from features.outcomes import OUTCOME_COLUMN, credit_bad_event
    from features.schemas import partition_path

    months = warehouse_months(settings.raw_dir, province)
    paths = [partition_path(settings.raw_dir, "credit_events", province, m) for m in months]
    paths = [str(path) for path in paths if path.exists()]
    if OUTCOME_COLUMN not in labels.columns or not months or not paths:
        return labels
    data_end = months[-1]
    group = F.pmod(F.xxhash64(F.col("msisdn")), F.lit(partitions(spark, settings, province)))
    events = spark.read.parquet(*paths).select("msisdn", "event_time", "event_type").withColumn(GROUP, group)
    columns = labels.columns
    schema = labels.withColumn(OUTCOME_COLUMN, F.col(OUTCOME_COLUMN).cast(DoubleType())).schema

    def outcome(rows: pd.DataFrame, happened: pd.DataFrame) -> pd.DataFrame:
        if rows.empty:  # a group's events without labels (a side without rows may lack columns)
            return pd.DataFrame({c: [] for c in columns})
        rows = rows[columns].reset_index(drop=True)
        if happened.empty:
            happened = pd.DataFrame({"msisdn": [], "event_time": pd.to_datetime([]), "event_type": []})
        bad = credit_bad_event(rows, happened, data_end, definition)
        return rows.assign(**{OUTCOME_COLUMN: bad.to_numpy()})

    grouped = labels.withColumn(GROUP, group).groupBy(GROUP)
    return grouped.cogroup(events.groupBy(GROUP)).applyInPandas(outcome, schema)


def label_months(settings: Settings, t: Task, province: str | None = None) -> list[str]:
    """Months with labels for the task, counted by Spark (``training.data.label_months``)."""
    from pyspark.sql import functions as F

    labels = province_labels(spark_session(settings), settings, province, _reads_outcome(t))
    months = []
    if t.label in labels.columns:
        rows = labels.filter(F.col(t.label).isNotNull()).select("month").distinct().collect()
        months = sorted(r["month"] for r in rows)
    if not months:
        raise NotReadyError(f"no {t.label} labels for {t.name}: nothing to train it on")
    return months


def labels_frame(
    spark: SparkSession, settings: Settings, t: Task, split: Split, province: str | None
) -> DataFrame:
    """The task's labelled rows of the split's months, with the generator's oracle where it has one."""
    from pyspark.sql import functions as F

    labels = province_labels(spark, settings, province, _reads_outcome(t))
    if t.label not in labels.columns:
        raise NotReadyError(f"no {t.label} labels for {t.name}: nothing to train it on")
    labels = labels.filter(F.col("month").isin(list(split.months)) & F.col(t.label).isNotNull())
    oracles = [_timestamps(spark.read.parquet(str(p))) for p in oracle_files(settings, province).values()]
    if oracles:
        labels = labels.join(_stacked(oracles).drop("province", "month"), on=KEYS, how="left")
    return labels


def split_column(spark: SparkSession, labels: DataFrame, t: Task, split: Split) -> DataFrame:
    """``labels`` with each row's part. By month: from the row's month. By customer: the embedded
    path's own assignment (``customer_parts``) on the customers' (msisdn, month, label) rows,
    the only columns the driver collects for it."""
    from pyspark.sql import functions as F

    if split.method == "time":
        part = (
            F.when(F.col("month").isin(list(split.train)), "train")
            .when(F.col("month") == split.valid, "valid")
            .when(F.col("month") == split.test, "test")
        )
        return labels.withColumn(PART, part)
    narrow = labels.select("msisdn", "month", t.label).toPandas()
    parts = customer_parts(narrow, t, CUSTOMER_SHARES, split.seed)
    assigned = pd.DataFrame({"msisdn": narrow["msisdn"], PART: np.asarray(PARTS)[parts]}).drop_duplicates(
        "msisdn"
    )
    return labels.join(spark.createDataFrame(assigned), on="msisdn")


def indicator_frame(spark: SparkSession, settings: Settings, t: Task, entity: DataFrame) -> DataFrame:
    """Point-in-time correct indicators for the (msisdn, event_timestamp) rows of ``entity``, by
    the task's registered feature service, joined by Feast's Spark offline store.

    The registry's views read the offline files through ``FileSource``; the Spark offline store
    reads ``SparkSource`` only, so each view of the service is handed to it with a
    ``SparkSource`` over the same files (same timestamp fields). The registry is not changed."""
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
        SparkOfflineStore,
        SparkOfflineStoreConfig,
    )
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    store = open_store(settings)
    require_own_sources(store)
    service = feature_service(store, t.evaluation, t.province)
    repo = Path(store.repo_path)
    views, refs = [], []
    warnings.filterwarnings("ignore", "The spark .* experimental", RuntimeWarning)  # Feast's, every call
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name).__copy__()
        source = view.batch_source
        path = Path(source.path) if Path(source.path).is_absolute() else repo / source.path
        view.batch_source = SparkSource(
            name=source.name,
            path=str(path),
            file_format="parquet",
            timestamp_field=source.timestamp_field,
            created_timestamp_column=source.created_timestamp_column,
        )
        views.append(view)
        refs += [f"{projection.name_to_use()}:{f.name}" for f in projection.features]
    config = store.config.model_copy()
    config._offline_store = SparkOfflineStoreConfig()
    with session_setting(spark, QUOTED_REGEX, "true"):  # Feast sets it; the session's own after
        job = SparkOfflineStore.get_historical_features(
            config=config,
            feature_views=views,
            feature_refs=refs,
            entity_df=entity,
            registry=store.registry,
            project=store.project,
            full_feature_names=False,
        )
        return job.to_spark_df()


def partitions(spark: SparkSession, settings: Settings, province: str | None) -> int:
    """Partitions of the joined rows: about ``ROWS_PER_PARTITION`` label rows each (counted from
    the label files' footers), never fewer than the session's shuffle partitions."""
    labelled = sum(
        pq.ParquetFile(path).metadata.num_rows for path, _ in label_files(settings, province).values()
    )
    return max(int(spark.conf.get(SHUFFLE_PARTITIONS)), math.ceil(labelled / ROWS_PER_PARTITION))


def spark_rows(settings: Settings, t: Task, split: Split, province: str | None = None) -> SparkRows:
    """The task's labelled rows of the split with their indicators, persisted by Spark and
    counted per part; nothing of them is collected."""
    from pyspark import StorageLevel

    spark = spark_session(settings)
    labels = split_column(spark, labels_frame(spark, settings, t, split, province), t, split)
    features = indicator_frame(spark, settings, t, labels.select(*KEYS))
    # the labels carry the province too (the feature store's is the same, read as a model input)
    features = features.select(*KEYS, *[c for c in features.columns if c not in labels.columns])
    # the join's partitions, persisted, are read back whole: of bounded size whatever the province
    with session_setting(spark, SHUFFLE_PARTITIONS, str(partitions(spark, settings, province))):
        # on disk: the heap (on local[N], the driver's) keeps room for the fits and the sample
        frame = labels.join(features, on=KEYS).persist(StorageLevel.DISK_ONLY)
        counted = {r[PART]: r["count"] for r in frame.groupBy(PART).count().collect()}
    rows = {k: int(counted.get(k, 0)) for k in PARTS}
    for name, n in rows.items():
        if n == 0:
            frame.unpersist()
            raise NotReadyError(f"the {name} part of the split {split} has no rows for {t.name}")
    return SparkRows(frame, rows)


def _drawn(seed: int, fraction: float) -> Column:
    """Whether a row's customer is among ``fraction`` of the customers (every one at 1), drawn by
    a seeded hash of the phone number: the same for all their rows, parts and months."""
    from pyspark.sql import functions as F

    if fraction >= 1.0:
        return F.lit(True)
    bucket = F.pmod(F.xxhash64(F.lit(f"telcoml-sample-{seed}"), F.col("msisdn")), F.lit(SAMPLE_BUCKETS))
    return bucket / SAMPLE_BUCKETS < F.lit(fraction)


def sample_sizes(settings: Settings) -> dict[str, int]:
    """The driver's rows per part at most: the tuning sample, a quarter of it to validate, the
    evaluation sample."""
    return {
        "train": settings.spark_tuning_sample,
        "valid": max(settings.spark_tuning_sample // 4, 1),
        "test": settings.spark_evaluation_sample,
    }


def driver_sample(rows: SparkRows, wanted: dict[str, int], seed: int) -> pd.DataFrame:
    """About ``wanted`` rows of each part, whole customers drawn by a seeded hash of the phone
    number (every row of a part when it has fewer), collected to the driver."""
    from pyspark.sql import functions as F

    keep = None
    for part, n in rows.rows.items():
        this = (F.col(PART) == part) & _drawn(seed, min(1.0, wanted[part] / n))
        keep = this if keep is None else keep | this
    # Arrow batches, not a heap of Java rows (which overflowed a 2 GiB heap at 1M)
    with session_setting(rows.frame.sparkSession, ARROW, "true"):
        frame = rows.frame.filter(keep).toPandas()
    frame["event_timestamp"] = _utc(frame["event_timestamp"])
    return frame.sort_values(KEYS, kind="stable").reset_index(drop=True)


def snapshot_sample(
    settings: Settings,
    t: Task,
    month: str,
    province: str | None = None,
    seed: int = 7,
    held_out: SparkRows | None = None,
    share: float | None = None,
    outcome: bool = True,
) -> Snapshot:
    """The Spark path's ``training.data.snapshot_frame``: a month's snapshot customers with the
    task's indicators from Feast's Spark offline store, at most about
    ``TELCOML_SPARK_TUNING_SAMPLE`` of them (whole snapshot below it), drawn by the seeded hash
    of the phone number; ``share``: the share of customers drawn, another month's
    (``Snapshot.share``) for the same customers. The customers of ``held_out``'s test part are
    left out. With ``outcome``, their credit outcome in that month comes with them, where the
    labels have one."""
    from pyspark.sql import functions as F

    from features.build import offline_file
    from features.outcomes import OUTCOME_COLUMN

    provinces = snapshot_provinces(settings, month, province)
    spark = spark_session(settings)
    files = {p: str(offline_file(settings.offline_dir, "profile", p, month)) for p in provinces}
    customers = sum(pq.ParquetFile(f).metadata.num_rows for f in files.values())
    fraction = share if share is not None else min(1.0, settings.spark_tuning_sample / max(customers, 1))
    drawn = _drawn(seed, fraction)
    entity = _stacked(
        [spark.read.parquet(f).select(*KEYS).withColumn("province", F.lit(p)) for p, f in files.items()]
    ).filter(drawn)
    if held_out is not None:
        judges = held_out.frame.filter(F.col(PART) == "test").select("msisdn").distinct()
        # cut from the plan of Feast's earlier join: its temporary views (``entity_dataframe``)
        # would otherwise read as a recursive view in the join below
        judges = judges.localCheckpoint()
        entity = entity.join(judges, on="msisdn", how="left_anti")
    features = indicator_frame(spark, settings, t, entity.select(*KEYS))
    if "province" not in t.feature_names:  # else Feast brings it (the same value)
        features = features.join(entity, on=KEYS)
    with session_setting(spark, ARROW, "true"):
        frame = features.toPandas()
        known = None
        try:
            labels = province_labels(spark, settings, province) if outcome else None
        except NotReadyError:  # a province may bring indicators only
            labels = None
        if labels is not None and OUTCOME_COLUMN in labels.columns:
            known = (
                labels.filter((F.col("month") == month) & drawn)
                .select("msisdn", "month", OUTCOME_COLUMN)
                .toPandas()
            )
    frame["event_timestamp"] = _utc(frame["event_timestamp"]).dt.as_unit("us")  # the offline files' unit
    frame["month"] = month
    return Snapshot(frame.sort_values(KEYS, kind="stable").reset_index(drop=True), customers, fraction, known)


def spark_dataset(settings: Settings, t: Task, split: Split, province: str | None = None) -> Dataset:
    """The task's ``Dataset`` on the Spark path: the driver's sample as its train, valid and test
    parts (``lineage['rows']``: every row's count, ``lineage['driver_rows']``: the sample's), the
    persisted rows as ``spark_rows`` for the fits."""
    rows = spark_rows(settings, t, split, province)
    try:
        sample = driver_sample(rows, sample_sizes(settings), seed=split.seed)
    except BaseException:
        rows.release()
        raise
    parts = {k: sample[sample[PART] == k].drop(columns=PART) for k in PARTS}
    data = dataset_of(settings, t, split, parts, province, rows=rows.rows)
    data.spark_rows = rows
    return data


__all__ = [
    "label_months",
    "province_labels",
    "SparkRows",
    "spark_rows",
    "spark_dataset",
    "driver_sample",
    "indicator_frame",
    "labels_frame",
    "snapshot_sample",
    "Snapshot",
]
