"""A week's data quality on the documents' four dimensions, as an Evidently test report.

The checks come from the indicator library, so they change when an indicator does:

* completeness — no empty values in an indicator the library says is never empty;
* accuracy — every value inside the indicator's valid range or code list;
* timeliness — the indicators a customer was scored on were at most the snapshot's
  time-to-live old (``features.repo.SNAPSHOT_TTL``) when they were used;
* authenticity — every customer belongs to a known province and to one only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import (
    InRangeValueCount,
    MaxValue,
    MissingValueCount,
    OutListValueCount,
    OutRangeValueCount,
)
from evidently.tests import eq, lte

from core import indicators as lib
from features.repo import SNAPSHOT_TTL

DIMENSIONS = ("completeness", "accuracy", "timeliness", "authenticity")


@dataclass
class QualityResult:
    province: str
    week: str
    rows: int
    dimensions: dict[str, dict] = field(default_factory=dict)  # dimension -> {"passed", "failed", "failures"}

    @property
    def passed(self) -> bool:
        return all(d["failed"] == 0 for d in self.dimensions.values())

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def _frame(records: pd.DataFrame) -> pd.DataFrame:
    frame = records.copy()
    scored = pd.to_datetime(frame["scored_at"], utc=True)
    as_of = pd.to_datetime(frame["features_as_of"], utc=True)
    frame["feature_age_days"] = ((scored - as_of).dt.total_seconds() / 86400.0).fillna(1e6)
    provinces_per_customer = frame.groupby("customer_key")["province"].transform("nunique")
    frame["province_conflict"] = (provinces_per_customer > 1).astype(int)
    return frame


def quality_report(records: pd.DataFrame, province: str, week: str, timestamp=None):
    """Evidently's test report of one province's week and its four-dimension summary."""
    frame = _frame(records)
    present = [i for i in lib.CATALOGUE if i.id in frame.columns and frame[i.id].notna().any()]
    checks: list[tuple[str, object]] = []
    for i in present:
        if not i.nullable:
            checks.append(("completeness", MissingValueCount(column=i.id, tests=[eq(0)])))
        if i.codes:
            checks.append(("accuracy", OutListValueCount(column=i.id, values=list(i.codes), tests=[eq(0)])))
        elif i.valid_range:
            low, high = i.valid_range
            checks.append(("accuracy", OutRangeValueCount(column=i.id, left=low, right=high, tests=[eq(0)])))
    ttl_days = SNAPSHOT_TTL.total_seconds() / 86400.0
    checks.append(("timeliness", MaxValue(column="feature_age_days", tests=[lte(ttl_days)])))
    checks.append(
        (
            "timeliness",
            InRangeValueCount(column="feature_age_days", left=0, right=ttl_days, tests=[eq(len(frame))]),
        )
    )
    checks.append(("authenticity", MaxValue(column="province_conflict", tests=[eq(0)])))
    numeric = [i.id for i in present if i.kind != "category"] + ["feature_age_days", "province_conflict"]
    categorical = [i.id for i in present if i.kind == "category"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([m for _, m in checks], include_tests=True).run(
        Dataset.from_pandas(frame[numeric + categorical], data_definition=definition),
        timestamp=timestamp,
        name=f"{province} data quality {week}",
        tags=[province, "data_quality", week],
    )

    by_metric = {}
    for test in snapshot.dict()["tests"]:
        by_metric.setdefault(test["metric_config"]["metric_id"], []).append(test)
    metric_ids = [m["id"] for m in snapshot.dict()["metrics"]]
    result = QualityResult(
        province, week, len(frame), {d: {"passed": 0, "failed": 0, "failures": []} for d in DIMENSIONS}
    )
    for (dimension, _), metric_id in zip(checks, metric_ids):
        for test in by_metric.get(metric_id, []):
            if test["status"] == "SUCCESS":
                result.dimensions[dimension]["passed"] += 1
            else:
                result.dimensions[dimension]["failed"] += 1
                result.dimensions[dimension]["failures"].append(test["description"])
    return snapshot, result
