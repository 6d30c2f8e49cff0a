"""What the console reads: one customer's answer (as ``/score`` gives it) and indicators, within a
key's province scope; and the backend that holds the champions and the stores.

Inside the BentoML service the backend is the service instance itself (its champions, reloaded
by ``/reload``, its online store, prepared answers and key ring); ``telcoml console`` alone
builds a ``Backend`` with the same attributes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from core.settings import Settings
from serving.answers import customer_answer, score_frame
from serving.champions import ModelSet, load_champions
from serving.online import OnlineFeatures
from serving.prepared import PreparedAnswers, unpack
from serving.security import KeyRing, may_score


class Backend:
    """Champions, online store, prepared answers and keys for the console alone (the service's
    own are used when it is mounted there)."""

    def __init__(self, settings: Settings, models: ModelSet | None = None):
        self.settings = settings
        self.keys = KeyRing(settings)
        self.models = models if models is not None else load_champions(settings)
        self.online = OnlineFeatures(settings)
        self.prepared = PreparedAnswers(settings) if settings.prepared_answers else None


class LazyBackend:
    """A ``Backend`` made on first use (champions load in seconds; the server answers at once)."""

    def __init__(self, settings: Settings, models: ModelSet | None = None):
        self.settings, self._models = settings, models
        self._backend: Backend | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Backend:
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = Backend(self.settings, self._models)
        return self._backend


@dataclass(frozen=True)
class CustomerRecord:
    """One customer as the console shows them: the ``/score`` answer and the indicators."""

    answer: dict
    indicators: dict
    #: the province's file (cut-offs, guidance, retention thresholds), None: the group's defaults
    config: object | None


def customer_record(backend, scope: str, msisdn: str) -> CustomerRecord | None:
    """The customer's answer and indicators, or None when the key may not see them: not in the
    store, or another province's (the same None, as ``/score`` gives the same 404).

    The answer is the prepared one when it is current (``serving.prepared``), else scored live,
    exactly as ``/score`` does. ``StoreUnavailable`` if the online store does not answer.
    """
    features = backend.online.fetch([msisdn])
    province = features["province"][0]
    if not features.known()[0] or not may_score(scope, province):
        return None
    models = backend.models.for_province(province)
    answer = None
    if backend.prepared is not None:
        hit = backend.prepared.lookup([msisdn])[0]
        if hit is not None and hit.generation == backend.prepared.current(models, province):
            answer = unpack(hit.answer)
    if answer is None:
        scored = score_frame(models, features)[0]
        answer = customer_answer(msisdn, province, scored, models, features.as_of[0], "live")
    indicators = {name: column[0] for name, column in features.columns.items()}
    return CustomerRecord(answer, indicators, models.config)
