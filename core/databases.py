"""PostgreSQL databases the production profile's services keep their state in (Optuna's studies,
MLflow's tracking server): created when missing, dropped by tests that made their own.

``python -m core.databases create postgresql+psycopg://user@host:5432/name`` (``make
mlflow-server``, ``make tune-workers``) creates the database if it is not there yet.
"""

from __future__ import annotations

import re
import sys

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.errors import ConfigurationError


def _server(url: str):
    """The database's name and an engine on the server's maintenance database ``postgres``."""
    parsed = make_url(url)
    if not parsed.get_backend_name() == "postgresql" or not parsed.database:
        raise ConfigurationError(f"not a PostgreSQL database URL: {parsed.render_as_string()}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", parsed.database):
        raise ConfigurationError(f"database name {parsed.database!r}: letters, digits and underscores only")
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    return parsed.database, engine


def ensure_database(url: str) -> bool:
    """Create the database ``url`` names if it does not exist; True if it was created."""
    name, engine = _server(url)
    try:
        with engine.connect() as db:
            if db.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                return False
            db.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        engine.dispose()


def drop_database(url: str) -> None:
    """Drop the database ``url`` names (its open connections first), if it exists."""
    name, engine = _server(url)
    try:
        with engine.connect() as db:
            db.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            db.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "create":
        sys.exit("usage: python -m core.databases create postgresql+psycopg://user@host:5432/name")
    try:
        created = ensure_database(sys.argv[2])
    except ConfigurationError as err:
        sys.exit(f"error: {err}")
    print(f"{make_url(sys.argv[2]).database}: {'created' if created else 'exists'}")
