"""The Feast feature repository, declared from the indicator library.

entity -> sources -> feature views -> feature services, one short comment above each.
Paths are the only thing that varies between machines, so the declarations take the
offline directory as an argument, as ``features.store`` gives it: relative to the
repository folder (``../offline``), which Feast resolves against the folder of
``feature_store.yaml``, so the registry holds no absolute path and the work directory can
move. Infrastructure lives in ``feature_store.yaml``; the folder's ``definitions.py``
builds these same objects for the Feast CLI (both written by ``features.store``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Bytes, Float64, Int64, String

from core import indicators as lib
from core.indicators import service_name
from features.provinces import custom_subject

#: Version of every task's feature contract; bump when a service's indicators change.
#: Indicators are month-end snapshots; a snapshot older than this is not served.
SNAPSHOT_TTL = timedelta(days=40)
_FEAST_TYPES = {"int": Int64, "float": Float64, "category": String}

# The customer, keyed by phone number (MSISDN) as the interaction interface is.
customer = Entity(
    name="customer",
    join_keys=["msisdn"],
    value_type=ValueType.STRING,
    description="A mobile subscriber, keyed by the 11-digit phone number",
)


def source(offline_dir: Path, subject: str) -> FileSource:
    """Month-end indicator snapshots of one subject: one Parquet file per province and month."""
    return FileSource(
        name=f"{subject}_snapshots",
        path=str(Path(offline_dir) / subject / "*.parquet"),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
    )


def _view(offline_dir: Path, subject: str, indicators: list, tags: dict[str, str]) -> FeatureView:
    """A view of month-end indicator snapshots: a field per indicator, described in both languages."""
    return FeatureView(
        name=subject,
        entities=[customer],
        ttl=SNAPSHOT_TTL,
        schema=[
            Field(
                name=i.id,
                dtype=_FEAST_TYPES[i.kind],
                description=f"{i.name_en} ({i.name_zh}): {i.definition}",
            )
            for i in indicators
        ],
        source=source(offline_dir, subject),
        online=True,
        tags={"subject": subject, **tags},
    )


def feature_view(offline_dir: Path, subject: str) -> FeatureView:
    """One feature view per subject, its fields and descriptions from the library."""
    return _view(offline_dir, subject, lib.by_subject(subject), {})


def custom_view(offline_dir: Path, config) -> FeatureView:
    """A province's own indicators (``custom_gd``), declared by its province file."""
    return _view(offline_dir, custom_subject(config.province), config.custom, {"province": config.province})


#: The view of prepared answers (``serving.prepared``): not indicators, never materialized.
ANSWERS_VIEW = "crm_answers"


def answers_view(offline_dir: Path) -> FeatureView:
    """Every customer's ``/score`` answer, prepared in bulk and pushed to the online store.

    Rows arrive by ``FeatureStore.push`` (online only); the batch source is declared
    because Feast requires one, and stays empty.
    """
    return FeatureView(
        name=ANSWERS_VIEW,
        entities=[customer],
        ttl=SNAPSHOT_TTL,
        schema=[
            Field(name="province", dtype=String, description="province of the customer (key scope)"),
            Field(
                name="generation",
                dtype=String,
                description="digest of the indicators' materialization, the champions and the province file",
            ),
            Field(name="answer", dtype=Bytes, description="the /score answer, JSON compressed with zlib"),
            Field(
                name="indicators",
                dtype=Bytes,
                description="the indicators it was computed from, JSON compressed with zlib",
            ),
        ],
        source=PushSource(
            name=f"{ANSWERS_VIEW}_push",
            batch_source=FileSource(
                name=f"{ANSWERS_VIEW}_pushed",
                path=str(Path(offline_dir) / ANSWERS_VIEW / "*.parquet"),
                file_format=ParquetFormat(),
                timestamp_field="event_timestamp",
            ),
        ),
        online=True,
        tags={"kind": "answers"},
    )


def feature_service(
    task: str,
    views: dict[str, FeatureView],
    indicator_ids: list[str] | None = None,
    province: str | None = None,
) -> FeatureService:
    """A task's versioned feature contract: its indicators, grouped by feature view."""
    ids = indicator_ids if indicator_ids is not None else [i.id for i in lib.for_task(task)]
    projections = []
    for view in views.values():
        fields = {f.name for f in view.features}
        chosen = [i for i in ids if i in fields]
        if chosen:
            projections.append(view[chosen])
    return FeatureService(
        name=service_name(task, province),
        features=projections,
        tags={"task": task, "province": province or "all", "indicators": ",".join(ids)},
        description=f"Feature contract of the {task.replace('_', ' ')} model"
        + (f" of province {province}" if province else ""),
    )


def definitions(offline_dir: Path, provinces: Sequence = ()) -> list:
    """Every Feast object of the repository, ready for ``FeatureStore.apply``.

    ``provinces`` are the province files (``features.provinces.ProvinceConfig``): each
    gets its own versioned services (``credit_grade_gd_v1``) over its effective
    indicators, and a view of its custom indicators if it has any.
    """
    views = {s: feature_view(offline_dir, s) for s in lib.SUBJECTS}
    services = [feature_service(task, views) for task in lib.EVALUATIONS]
    custom = []
    for config in provinces:
        own = dict(views)
        if config.custom_indicators:
            custom.append(custom_view(offline_dir, config))
            own[custom[-1].name] = custom[-1]
        services += [
            feature_service(task, own, [i.id for i in config.effective_indicators(task)], config.province)
            for task in lib.EVALUATIONS
        ]
    return [customer, *views.values(), *custom, *services, answers_view(offline_dir)]
