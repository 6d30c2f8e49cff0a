"""Artifact locations rooted in the work directory, so a work directory can be moved or copied.

MLflow stores a local artifact location as an absolute ``file://`` URI in its database: every
run, logged model and model version of a moved work directory would still point at the old
place. The tracking store of a work directory is ``<workdir>/mlflow.db``, so its artifacts are
recorded as ``workdir:/mlartifacts/...`` instead, a path under the folder that holds the
SQLite database in use; this artifact repository (registered with MLflow by the package's
``mlflow.artifact_repository`` entry point) turns it back into files at the time of use, in
this process, in ``mlflow ui`` and in ``mlflow server`` alike.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from contextlib import closing
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

#: The URI scheme of a location inside the work directory (``pyproject.toml`` registers it).
SCHEME = "workdir"
#: Where ``mlflow server`` / ``mlflow ui`` keep their backend store URI for their workers.
_SERVER_STORE_VARIABLE = "_MLFLOW_SERVER_FILE_STORE"


def workdir_uri(relative: str) -> str:
    """The portable URI of a path inside the work directory (``mlartifacts`` -> ``workdir:/mlartifacts``)."""
    return f"{SCHEME}:/{relative.strip('/')}"


def sqlite_folder(tracking_uri: str | None) -> Path | None:
    """The folder of a SQLite tracking store's database file, None for any other store."""
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        return None
    database = urllib.parse.urlparse(tracking_uri).path[1:]  # sqlite:///rel.db, sqlite:////abs.db
    return Path(database).absolute().parent if database and database != ":memory:" else None


def workdir_root(tracking_uri: str | None = None) -> Path:
    """The work directory a ``workdir:`` URI is under: the folder of the SQLite tracking store
    of this call, of the MLflow server running it, or of this process."""
    for uri in (tracking_uri, os.environ.get(_SERVER_STORE_VARIABLE), mlflow.get_tracking_uri()):
        folder = sqlite_folder(uri)
        if folder is not None:
            return folder
    raise MlflowException(
        f"a {SCHEME}: artifact location is inside a work directory, found from its SQLite tracking "
        f"store, and the tracking URI is {mlflow.get_tracking_uri()!r}: set "
        "MLFLOW_TRACKING_URI=sqlite:///<workdir>/mlflow.db (or --backend-store-uri for mlflow ui)"
    )


def resolve(uri: str, tracking_uri: str | None = None) -> str:
    """The ``file://`` URI that a ``workdir:`` URI stands for now."""
    relative = urllib.parse.urlparse(uri).path.lstrip("/")
    return (workdir_root(tracking_uri) / relative).as_uri()


class WorkdirArtifactRepository(LocalArtifactRepository):
    """Local artifacts under the work directory, addressed by ``workdir:/<path in it>``."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
        super().__init__(resolve(artifact_uri, tracking_uri), tracking_uri, registry_uri)
        self.artifact_uri = artifact_uri  # what MLflow records (MLmodel's artifact_path) stays portable


def register() -> None:
    """Make sure this process's MLflow knows the scheme: the package's entry point registers it
    where telcoml is installed; a Bento (its code copied, not installed) has none."""
    from mlflow.store.artifact import artifact_repository_registry as registry

    if SCHEME not in registry.get_registered_artifact_repositories():
        registry._artifact_repository_registry.register(SCHEME, WorkdirArtifactRepository)


#: Where MLflow's SQL store (3.17) keeps artifact locations: table -> columns.
_LOCATION_COLUMNS = {
    "experiments": ("artifact_location",),
    "runs": ("artifact_uri",),
    "logged_models": ("artifact_location",),
    "model_versions": ("storage_location", "source"),
}


def adopt_absolute_locations(database: Path, relative: str) -> int:
    """Rewrite a work directory's tracking store written before portable locations: every
    ``file://<somewhere>/<relative>...`` location of its experiments (wherever the work
    directory was then) becomes ``workdir:/<relative>...``, the artifacts in this work
    directory. Returns the locations rewritten (0 when there is nothing to do, the usual case)."""
    if not database.exists():
        return 0
    new = workdir_uri(relative)
    with closing(sqlite3.connect(database, timeout=60)) as db:
        try:
            found = db.execute(
                "SELECT DISTINCT artifact_location FROM experiments WHERE artifact_location LIKE 'file:%'"
            ).fetchall()
        except sqlite3.OperationalError:  # a database MLflow has not set up yet
            return 0
        roots = [r for (r,) in found if r.rstrip("/").endswith("/" + relative)]
        changed = 0
        with db:  # one transaction: a reader sees the old locations or the new ones
            for root in roots:
                n = len(root)
                for table, columns in _LOCATION_COLUMNS.items():
                    for column in columns:
                        changed += db.execute(
                            f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                            f"WHERE substr({column}, 1, ?) = ? "
                            f"AND (length({column}) = ? OR substr({column}, ?, 1) = '/')",
                            (new, n + 1, n, root, n, n + 1),
                        ).rowcount
    return changed
