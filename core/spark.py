"""The Spark session of the production profile (``TELCOML_ENGINE=spark``).

Local mode by default (``local[2]``), a cluster by master URL (``spark://host:7077``,
``yarn``, ``k8s://...``); anything else Spark takes (executors, their memory and cores) comes
from ``TELCOML_SPARK_CONF``. PySpark is imported only here and only when a session is asked
for: the embedded profile and the serving image never load it.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark import Broadcast
    from pyspark.sql import SparkSession

    from core.settings import Settings

T = TypeVar("T")

#: Small, quiet defaults for local mode on a shared machine; TELCOML_SPARK_CONF overrides each.
DEFAULT_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # raw months are text (2026-01): never guessed as dates or numbers from partition folders
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    # the offline store's timestamps are UTC; Spark would otherwise shift them to the machine's zone
    "spark.sql.session.timeZone": "UTC",
    # re-scoring one province replaces its partitions of the CRM file, not the other provinces'
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}


def spark_session(settings: Settings) -> SparkSession:
    """The session the settings name (created once per process, reused after)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:  # the embedded install has no Spark
        raise ConfigurationError(
            "TELCOML_ENGINE=spark needs PySpark: install the spark extra (pip install 'telcoml[spark]')"
        ) from err
    # executors run this interpreter (the project's venv) unless the cluster names its own
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(settings.spark_master).appName("telcoml")
    conf = {**DEFAULT_CONF, "spark.driver.memory": settings.spark_driver_memory, **settings.spark_conf}
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextmanager
def session_setting(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """A session setting for the duration of a block; the session's own (or none) after."""
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        spark.conf.unset(key) if before is None else spark.conf.set(key, before)


#: What ``received`` unpickled in this executor process, by broadcast (gone with it).
_RECEIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ship(spark: SparkSession, value: T) -> Broadcast[bytes]:
    """Send ``value`` to every executor once (a broadcast of its cloudpickle bytes: Spark's own
    broadcast uses the standard pickle, which refuses the lambdas a task's definition holds).
    A partition reads it with ``received``; ``destroy()`` the broadcast when the job is done."""
    from pyspark import cloudpickle

    return spark.sparkContext.broadcast(cloudpickle.dumps(value))


def received(shipped: Broadcast[bytes]) -> Any:
    """The object ``ship`` sent, unpickled once per executor process (the partitions a Python
    worker runs one after another share it)."""
    import pickle

    if shipped not in _RECEIVED:
        _RECEIVED[shipped] = pickle.loads(shipped.value)
    return _RECEIVED[shipped]
