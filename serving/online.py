"""The online store, as the service reads it: every indicator of a list of customers in one
Feast lookup, column by column.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from core import indicators as lib
from core.errors import TelcomlError
from core.settings import Settings
from features.provinces import load_provinces
from features.store import open_store

#: Every indicator a model or the key scope needs, fetched in one online lookup.
ONLINE_REFS = [f"{i.subject}:{i.id}" for i in lib.CATALOGUE]


class StoreUnavailable(TelcomlError):
    """The online store did not answer."""


class Features:
    """Online indicators of a list of customers, column by column.

    Object arrays, not a DataFrame: building a one-row frame cost more than the five
    predictions together. ``frame()`` gives pandas to callers that want it.
    """

    def __init__(self, columns: dict[str, np.ndarray], as_of: list[str | None]):
        self.columns = columns
        self.as_of = as_of

    def __len__(self) -> int:
        return len(self.as_of)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    def known(self) -> list[bool]:
        """Customers the online store has indicators for: their province is always there (a
        province's own data may leave any indicator empty, the customer category included)."""
        return [v is not None for v in self.columns["province"]]

    def take(self, rows: list[int]) -> Features:
        """The given rows, in that order."""
        return Features({k: v[rows] for k, v in self.columns.items()}, [self.as_of[i] for i in rows])

    def records(self) -> list[dict]:
        """Each customer's indicators, with ``features_as_of``: every value as the store gives it
        (an integer indicator's an int, None where missing), whatever the other customers hold."""
        names = [*self.columns, "features_as_of"]
        return [dict(zip(names, values)) for values in zip(*self.columns.values(), self.as_of)]


class OnlineFeatures:
    """One Feast online lookup for all indicators of a list of customers."""

    def __init__(self, settings: Settings):
        self.store = open_store(settings)
        if settings.online_store == "redis":
            _answer_fast_when_down(self.store)
        views = {v.name for v in self.store.list_feature_views()}
        # provinces' own indicators, where their view is registered
        self.refs = ONLINE_REFS + [
            f"{i.subject}:{i.id}" for c in load_provinces(settings) for i in c.custom if i.subject in views
        ]
        #: the order of a lookup's columns: the phone number, then the library's indicators and the
        #: provinces' own (Feast's own order follows the string hash seed, PYTHONHASHSEED)
        self.names = ["msisdn", *dict.fromkeys(ref.split(":")[1] for ref in self.refs)]

    def fetch(self, msisdns: list[str]) -> Features:
        try:
            result = self.store.get_online_features(
                features=self.refs, entity_rows=[{"msisdn": m} for m in msisdns]
            )
            columns = result.to_dict(include_event_timestamps=True)
        except Exception as err:  # redis/sqlite errors: the store is down or unreadable
            raise StoreUnavailable(
                f"online feature store unavailable ({type(err).__name__}); retry shortly"
            ) from None
        stamps = [v for k, v in columns.items() if k.endswith("__ts")]
        latest = (
            [max((s for s in row if s), default=0) for row in zip(*stamps)] if stamps else [0] * len(msisdns)
        )
        # object arrays: values stay as Feast gives them (None where missing)
        return Features(
            {k: _objects(columns[k]) for k in self.names},
            [datetime.fromtimestamp(s, UTC).isoformat() if s > 0 else None for s in latest],
        )


def _answer_fast_when_down(store) -> None:
    """A CRM waiting on a live call learns within a second that Redis is down.

    redis-py's default policy retries three times with backoff up to 10 s (7.3 s measured
    for a refused connection), longer than a caller or a readiness probe waits. Here: one
    quick retry (a dropped connection is reopened), a 1 s connect and a 2 s read timeout.
    """
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    client = store._get_provider().online_store._get_client(store.config.online_store)
    client.set_retry(Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))
    kwargs = client.connection_pool.connection_kwargs
    for timeout, seconds in (("socket_connect_timeout", 1.0), ("socket_timeout", 2.0)):
        if kwargs.get(timeout) is None:  # unless the connection string sets its own
            kwargs[timeout] = seconds


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
