"""Open the feature store for a work directory, apply the repository, materialize, look up.

The online store is SQLite by default and Redis by configuration; the offline store is
DuckDB over the Parquet snapshots (``TELCOML_OFFLINE_STORE=file`` selects Feast's Dask
file store). The repository folder (``<workdir>/feature_repo``) is a Feast repository of its
own: ``feature_store.yaml``, a ``definitions.py`` that builds the objects ``telcoml``
applies, and a ``.feastignore``, so ``feast plan``, ``apply``, ``materialize`` and ``ui``
run there see the same store and delete nothing. Every path in them and in the registry is
relative to that folder, so the work directory can be moved or copied.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import io
import logging
import os
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import yaml
from feast import Entity, FeatureService, FeatureStore, FeatureView, FileSource
from feast.data_source import DataSource
from feast.infra.offline_stores import duckdb as feast_duckdb
from feast.repo_config import RepoConfig
from feast.repo_contents import RepoContents

from core.errors import NotReadyError
from core.io import atomic_write_parquet, atomic_write_text, remove_stale_temporaries, snapshot_time
from core.settings import Settings
from features.repo import ANSWERS_VIEW, definitions, service_name

if TYPE_CHECKING:  # the session's type, without PySpark where the serving image has none
    from core.spark import SparkSession

logging.getLogger("feast").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", module="feast")


def _read_in_repository(read):
    """Feast 0.67's DuckDB store reads a Parquet source at a relative path from the process's
    working directory, where its writer, its Dask store and its CLI (run in the repository
    folder) take the repository folder: read such a source from the folder too."""

    def read_source(data_source, repo_path):
        if isinstance(data_source, FileSource) and repo_path and not Path(data_source.path).is_absolute():
            data_source = copy.deepcopy(data_source)
            data_source.file_options.uri = FileSource.get_uri_for_file_path(repo_path, data_source.path)
        return read(data_source, repo_path)

    read_source.reads_in_repository = True
    return read_source


if not getattr(feast_duckdb._read_data_source, "reads_in_repository", False):
    feast_duckdb._read_data_source = _read_in_repository(feast_duckdb._read_data_source)

#: Mode of the store files: the SQLite online store holds every customer's full phone
#: number and indicators, so only the owner reads it (SQLite gives its journal the same).
STORE_FILE_MODE = 0o600

#: The Feast CLI's module in the repository folder: the objects ``apply_repository`` applies,
#: built by ``features.repo`` for the work directory above it (``{provinces}``: the province
#: files the platform last applied, relative to the folder when inside the work directory).
DEFINITIONS = '''"""The telcoml feature repository, for the Feast CLI run in this folder.

`feast plan`, `feast apply`, `feast materialize` and `feast ui` here see the objects that
`telcoml materialize` applies: the entity `customer`, a feature view per subject, the
versioned feature services (one per model and province file) and the prepared answers'
view, built by features/repo.py from the indicator library and the province files.
Written by telcoml (features/store.py): change the province files, not this file.
"""

from pathlib import Path

from features.store import repository_objects

globals().update(repository_objects(Path(__file__).resolve().parent, {provinces!r}))
'''

#: Nothing in the folder but definitions.py is Feast code (Feast imports every .py it finds).
FEASTIGNORE = "__pycache__/\n*.db\n*.db-journal\n"


def offline_from_repo(settings: Settings) -> Path:
    """The offline store as the repository's sources name it: relative to the repository folder."""
    return Path(os.path.relpath(settings.offline_dir, settings.feature_repo_dir))


def _from_repo(settings: Settings, path: Path) -> str:
    """``path`` relative to the repository folder when it is inside the work directory, else absolute."""
    path = Path(path).absolute()
    if path.is_relative_to(settings.workdir.absolute()):
        return os.path.relpath(path, settings.feature_repo_dir.absolute())
    return str(path)


def repo_config_dict(settings: Settings) -> dict:
    """The feature_store.yaml content for these settings: paths relative to the repository
    folder (Feast resolves them against it); Feast's MLflow lineage for ``feast ui``."""
    online = (
        {"type": "redis", "connection_string": settings.redis_url}
        if settings.online_store == "redis"
        else {"type": "sqlite", "path": "online_store.db"}
    )
    offline = {"type": "duckdb"} if settings.offline_store == "duckdb" else {"type": "file"}
    return {
        "project": settings.project,
        "provider": "local",
        "registry": {"registry_type": "file", "path": "registry.db", "cache_ttl_seconds": 60},
        "online_store": online,
        "offline_store": offline,
        "entity_key_serialization_version": 3,
        "auth": {"type": "no_auth"},
        "mlflow": mlflow_lineage(settings),
    }


def mlflow_lineage(settings: Settings) -> dict:
    """Feast's MLflow integration, for ``feast ui``'s models-per-feature pages: on, logging
    nothing itself (training tags its runs, ``lineage_tags``). The work directory's own
    tracking store is named relative to the repository folder, where the Feast CLI runs."""
    uri = settings.mlflow_tracking_uri or f"sqlite:///{_from_repo(settings, settings.workdir / 'mlflow.db')}"
    return {"enabled": True, "tracking_uri": uri, "auto_log": False}


def protect_store_files(config: RepoConfig) -> None:
    """Make the registry and the SQLite online store owner-only (``STORE_FILE_MODE``).

    A missing SQLite file is first created empty with that mode (SQLite opens an empty file
    as a new database), so Feast never writes a phone number to a file others can read; an
    existing file is narrowed (one written by an earlier version, or replaced by hand).
    Relative paths are the repository folder's, as Feast reads them.
    """
    repo = Path(config.repo_path)
    online = repo / config.online_store.path if config.online_store.type == "sqlite" else None
    for path in (repo / config.registry.path, online):
        if path is None:
            continue
        try:
            if path == online and not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, STORE_FILE_MODE))
            if path.exists() and (path.stat().st_mode & 0o777) != STORE_FILE_MODE:
                path.chmod(STORE_FILE_MODE)
        except OSError as err:  # another user's file (a read-only server): it can still be read
            logging.getLogger(__name__).warning("cannot make %s owner-only: %s", path, err)


def _write_if_changed(text: str, path: Path, mode: int | None = None) -> None:
    """Replace ``path`` atomically (owner-only unless ``mode``), only when its text differs."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic_write_text(text, path, mode)


def write_repository_files(settings: Settings) -> dict:
    """Write the repository folder's feature_store.yaml, definitions.py and .feastignore;
    returns the configuration."""
    repo = settings.feature_repo_dir
    repo.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries([repo])
    cfg = repo_config_dict(settings)
    _write_if_changed(yaml.safe_dump(cfg, sort_keys=False), repo / "feature_store.yaml")
    provinces = _from_repo(settings, Path(settings.provinces_dir))
    _write_if_changed(DEFINITIONS.format(provinces=provinces), repo / "definitions.py", 0o644)
    _write_if_changed(FEASTIGNORE, repo / ".feastignore", 0o644)
    return cfg


def open_store(settings: Settings) -> FeatureStore:
    """A FeatureStore for the settings' work directory (writes the repository folder's files;
    the store files owner-only)."""
    cfg = write_repository_files(settings)
    # Feast's MLflow client is the CLI's (feast ui); the platform tags its own runs (lineage_tags)
    cfg.pop("mlflow")
    repo = settings.feature_repo_dir.resolve()
    config = RepoConfig(repo_path=repo, **cfg)
    protect_store_files(config)
    store = FeatureStore(repo_path=str(repo), config=config)  # relative paths are the folder's
    _own_online_tables(store, repo)
    return store


def _own_online_tables(store: FeatureStore, repo: Path) -> None:
    """Point the registry's record of SQLite online tables at this folder's database.

    Feast records each table with its absolute path; in a copied or moved work directory the
    record still names the original's database, and the next ``feast apply`` there would tear
    down the original's tables (it drops an old record's table where the record says). The
    record is rewritten, without touching any table, whenever the platform opens the store.
    """
    if store.config.online_store.type != "sqlite" or not (repo / "registry.db").exists():
        return
    own = str((repo / store.config.online_store.path).resolve())
    registry = store.registry
    # the record as stored: reading it as Feast's SqliteTable objects would open (and create) the
    # databases it names, the original's included
    recorded = registry._get_registry_proto(project=store.project, allow_cache=False)
    tables = [o.sqlite_table for o in recorded.infra.infra_objects if o.HasField("sqlite_table")]
    if any(t.path != own for t in tables):
        registry._prepare_registry_for_changes(store.project)
        for o in registry.cached_registry_proto.infra.infra_objects:
            if o.HasField("sqlite_table"):
                o.sqlite_table.path = own
        registry.commit()


def repository(settings: Settings) -> list:
    """Every object of the work directory's repository: ``features.repo.definitions`` with the
    sources relative to the repository folder and the settings' province files."""
    from features.provinces import load_provinces

    return definitions(offline_from_repo(settings), load_provinces(settings))


def repository_objects(repo_dir: Path, provinces_dir: str) -> dict[str, object]:
    """The repository's objects by attribute name, for the folder's ``definitions.py``
    (the Feast CLI collects a module's attributes): the work directory is the folder's parent."""
    settings = Settings(workdir=Path(repo_dir).parent, provinces_dir=Path(repo_dir) / provinces_dir)
    return {f"{type(o).__name__.lower()}_{o.name}": o for o in repository(settings)}


def _answers_batch_file(settings: Settings) -> None:
    """An empty file of the prepared answers' batch source: answers are pushed online only, and
    ``feast materialize`` (every online view) then reads no rows instead of failing."""
    path = settings.offline_dir / ANSWERS_VIEW / "empty.parquet"
    if not path.exists():
        schema = pa.schema(
            [("msisdn", pa.string()), ("event_timestamp", pa.timestamp("us", tz="UTC"))]
            + [("province", pa.string()), ("generation", pa.string())]
            + [("answer", pa.binary()), ("indicators", pa.binary())]
        )
        atomic_write_parquet(schema.empty_table(), path)


def apply_repository(settings: Settings, extra: Sequence = ()) -> FeatureStore:
    """Register the entity, feature views and services (plus ``extra`` objects), and record
    the online tables in the registry as ``feast apply`` does (``feast plan`` then sees them)."""
    objects = [*repository(settings), *extra]
    _answers_batch_file(settings)
    store = open_store(settings)
    store.apply(objects)
    views = [o for o in objects if isinstance(o, FeatureView)]
    contents = RepoContents(
        projects=[],
        data_sources=[o for o in objects if isinstance(o, DataSource)]
        + [v.batch_source for v in views]
        + [v.stream_source for v in views if v.stream_source is not None],
        feature_views=views,
        on_demand_feature_views=[],
        stream_feature_views=[],
        label_views=[],
        entities=[o for o in objects if isinstance(o, Entity)],
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        permissions=[],
    )
    _, _, infra = store.plan(contents)
    store.registry.update_infra(infra, store.project, commit=True)
    protect_store_files(store.config)  # the registry is created by the first apply
    return store


def source_files(store: FeatureStore, view) -> list[str]:
    """The offline files of a feature view's batch source (its path is the repository folder's)."""
    return glob.glob(str(Path(store.repo_path) / view.batch_source.path))


def materialize_latest(
    store: FeatureStore,
    month: str,
    views: Sequence[str] | None = None,
    how: str = "feast",
    spark: SparkSession | None = None,
) -> None:
    """Load the snapshot of ``month`` (the latest) into the online store.

    By default every indicator view with offline files: a province file may declare custom
    indicators before its data has arrived. Prepared answers are pushed, not materialized.
    ``how``: Feast's ``materialize``, ``stream`` (``features.stream_materialize``: the same
    rows and registry record, a record batch at a time) or ``spark`` (those batches written by
    ``spark``'s tasks, split by offline row group).
    """
    end = snapshot_time(month).to_pydatetime()
    start = (snapshot_time(month) - pd.Timedelta(days=1)).to_pydatetime()
    if not views:
        views = [
            v.name
            for v in store.list_feature_views()
            if v.tags.get("kind") != "answers" and source_files(store, v)
        ]
    if how == "spark":
        from features.spark_materialize import materialize_spark

        materialize_spark(spark, store, start, end + pd.Timedelta(seconds=1), list(views))
    elif how == "stream":
        from features.stream_materialize import materialize_stream

        materialize_stream(store, start, end + pd.Timedelta(seconds=1), list(views))
    else:
        # Feast prints a coloured header and each view's name on stdout (escape codes in a log
        # file); the commands report the load themselves
        with contextlib.redirect_stdout(io.StringIO()):
            store.materialize(
                start_date=start, end_date=end + pd.Timedelta(seconds=1), feature_views=list(views)
            )
    protect_store_files(store.config)


def materialize_as_set(settings: Settings, store: FeatureStore, month: str) -> None:
    """``materialize_latest`` the way the settings choose (``TELCOML_MATERIALIZE``)."""
    spark = None
    if settings.materialize == "spark":
        from core.spark import spark_session

        spark = spark_session(settings)
    materialize_latest(store, month, how=settings.materialize, spark=spark)


def lineage_tags(store: FeatureStore, task: str, province: str | None = None) -> dict[str, str]:
    """The tags Feast's MLflow integration puts on a training run (``feast.*``), from the task's
    FeatureService: ``feast ui`` lists the registered models of each feature by them."""
    service = feature_service(store, task, province)
    refs = [f"{p.name_to_use()}:{f.name}" for p in service.feature_view_projections for f in p.features]
    return {
        "feast.project": store.project,
        "feast.retrieval_type": "historical",
        "feast.feature_service": service.name,
        "feast.feature_views": ",".join(sorted({p.name_to_use() for p in service.feature_view_projections})),
        "feast.feature_refs": ",".join(refs),
        "feast.feature_count": str(len(refs)),
    }


_SERVICES: weakref.WeakKeyDictionary[FeatureStore, dict] = weakref.WeakKeyDictionary()


def feature_service(store: FeatureStore, task: str, province: str | None = None):
    """A task's FeatureService, fetched once per store object.

    Fetching it anew on every lookup rebuilds it from the registry and discards Feast's
    cached request plan: about 6 ms of a 7 ms lookup (benchmarks/README.md).
    """
    cache = _SERVICES.setdefault(store, {})
    name = service_name(task, province)
    if name not in cache:
        from feast.errors import FeatureServiceNotFoundException

        try:
            cache[name] = store.get_feature_service(name)
        except FeatureServiceNotFoundException as err:  # built, never registered: Feast's own trace
            raise NotReadyError(
                f"the feature store has no feature service {name} yet: run `telcoml materialize` "
                "(it registers the indicators' views and services), then this again"
            ) from err
    return cache[name]


def online_view(
    store: FeatureStore, msisdns: Sequence[str], task: str, province: str | None = None
) -> pd.DataFrame:
    """Online indicators of customers through a task's feature service."""
    result = store.get_online_features(
        features=feature_service(store, task, province), entity_rows=[{"msisdn": m} for m in msisdns]
    )
    return result.to_df()


def require_own_sources(store: FeatureStore) -> None:
    """A registry written before sources were relative names the offline files of the place the
    work directory had then: once moved or copied, it would read nothing, or another's files."""
    workdir = Path(store.repo_path).resolve().parent
    for view in store.list_feature_views():
        path = Path(view.batch_source.path)
        if path.is_absolute() and not path.is_relative_to(workdir):
            raise NotReadyError(
                f"the feature registry in {store.repo_path} reads {view.name} from {path}, outside this "
                "work directory (written before it was moved or copied): run `telcoml materialize` "
                "(or `feast apply` in that folder) to register the repository here"
            )


def training_frame(
    store: FeatureStore, entity_df: pd.DataFrame, task: str, province: str | None = None
) -> pd.DataFrame:
    """Point-in-time correct indicators for (msisdn, event_timestamp) rows, by the task's service."""
    if entity_df.empty:
        raise NotReadyError("no customers to fetch indicators for (empty entity frame)")
    require_own_sources(store)
    return store.get_historical_features(
        entity_df=entity_df, features=feature_service(store, task, province)
    ).to_df()


__all__ = [
    "open_store",
    "apply_repository",
    "materialize_latest",
    "materialize_as_set",
    "online_view",
    "training_frame",
    "require_own_sources",
    "repo_config_dict",
    "protect_store_files",
    "repository",
    "repository_objects",
    "lineage_tags",
]
