"""Prepared answers: every customer's ``/score`` answer computed before the call.

Indicators are month-end snapshots: the online store changes only when a snapshot is
materialized, and the models only when champions change. So each customer's whole
answer (evaluations, reasons, guidance) can be computed in bulk after either event,
kept in the Feast online store (view ``crm_answers``: SQLite embedded, Redis in
production), and a call answered with one key lookup instead of a lookup, five models
and TreeSHAP (benchmarks/README.md has both paths side by side).

An answer is served only while it is exactly what live scoring would say. Each carries
a *generation*: a digest of the online indicators' materialization record (every
indicator view's intervals in the Feast registry), of the registry URIs answering its
province, of the province file, and of the code that words an answer. The service
computes the current generation per province; any difference (a materialization, a
reload with other champions, a changed province file, a new release) sends the call to
live scoring until ``telcoml prepare`` runs again. The service re-reads the registry
every ``prepared_check_seconds``: for at most that long after a materialization, a
call can still get the previous snapshot's answer.

Indicators written outside materialization (``push``/``write_to_online_store`` into an
indicator view) are not seen by the generation; the platform does neither.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from feast import FeatureStore
from feast.data_source import PushMode
from feast.errors import FeatureViewNotFoundException

from core import guidance, kinds, tasks
from core import indicators as lib
from core.errors import NotReadyError
from core.io import atomic_write_text
from core.logs import get_logger
from core.settings import Settings
from features.build import offline_file, offline_snapshots
from features.repo import ANSWERS_VIEW
from features.store import apply_repository, open_store
from serving.answers import customer_answer, score_frame
from serving.champions import ModelSet
from serving.online import Features, OnlineFeatures, StoreUnavailable

log = get_logger("telcoml.serving")
PUSH_SOURCE = f"{ANSWERS_VIEW}_push"
FIELDS = ("province", "generation", "answer", "indicators")
#: The code that words and stores an answer: a release that changes it makes older answers stale.
_ANSWER_CODE = [
    Path(__file__),
    Path(__file__).with_name("answers.py"),
    Path(__file__).with_name("retention.py"),
    Path(lib.__file__),
    Path(kinds.__file__),
    Path(tasks.__file__),
    Path(guidance.__file__),
    Path(__file__).parents[1] / "training" / "explain.py",
]


def code_digest() -> str:
    digest = hashlib.sha256()
    for path in _ANSWER_CODE:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def materialization(store: FeatureStore) -> str:
    """A digest of every indicator view's materialization intervals (changes on each materialize),
    read from the registry itself, not the store's cached copy."""
    views = store.registry.list_feature_views(store.project, allow_cache=False)
    record = sorted(
        (v.name, [(s.isoformat(), e.isoformat()) for s, e in v.materialization_intervals])
        for v in views
        if v.tags.get("kind") != "answers"
    )
    return hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]


def generation(watermark: str, models: ModelSet, code: str) -> str:
    """What an answer depends on besides the customer: indicators loaded, champions, province file, code."""
    parts = [
        watermark,
        code,
        json.dumps(sorted(models.names.items())),
        models.config.model_dump_json() if models.config is not None else "",
        json.dumps(asdict(models.retention)) if models.retention is not None else "",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _packed(value) -> bytes:
    """JSON, zlib-compressed: an answer's reasons and guidance in two languages are ~5.5 KB
    as text and ~1.9 KB packed, which is what a province of millions costs in Redis."""
    return zlib.compress(
        json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode(), 6
    )


@dataclass
class PreparedResult:
    provinces: dict[str, int]
    seconds: float

    @property
    def answers(self) -> int:
        return sum(self.provinces.values())


def snapshot_customers(settings: Settings) -> dict[str, list[str]]:
    """province -> numbers in its latest snapshot (the customers the online store holds)."""
    from serving.batch import latest_month_for

    provinces = sorted({province for province, _ in offline_snapshots(settings.offline_dir)})
    if not provinces:
        raise NotReadyError(f"no indicator snapshots in {settings.offline_dir}: run `telcoml build` first")
    return {
        p: pq.read_table(
            offline_file(settings.offline_dir, "profile", p, latest_month_for(settings, p)),
            columns=["msisdn"],
        )
        .column("msisdn")
        .to_pylist()
        for p in provinces
    }


def prepare_answers(
    settings: Settings,
    models: ModelSet,
    provinces: Sequence[str] | None = None,
    chunk_size: int = 2000,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    skip_current: bool = False,
) -> PreparedResult:
    """Compute every customer's answer from the online store and push it to ``crm_answers``.

    Each chunk is pushed as it is scored (a customer's previous answer stays until
    replaced, and an older generation is never served). ``progress(province, total)``
    returns a callable advanced by the customers done. Each province done is recorded
    with its generation (``prepared_state``); ``skip_current`` skips a province whose
    recorded generation is the current one (a background prepare after a reload that
    changed nothing for it).
    """
    started = time.perf_counter()
    store = apply_repository(settings)  # registers crm_answers in a repository applied before it existed
    watermark, code = materialization(store), code_digest()
    online = OnlineFeatures(settings)
    customers = snapshot_customers(settings)
    done: dict[str, int] = {}
    due = provinces_due(settings, models, provinces, customers, watermark, code, skip_current)
    for province, own, stamp in due:
        numbers = customers[province]
        advance = progress(province, len(numbers)) if progress else None
        done[province] = 0
        for start in range(0, len(numbers), chunk_size):
            chunk = numbers[start : start + chunk_size]
            features = online.fetch(chunk)
            rows = [
                k
                for k, (have, p) in enumerate(zip(features.known(), features["province"]))
                if have and p == province
            ]
            if rows:
                done[province] += push_answers(store, features.take(rows), own, stamp)
            if advance:
                advance(len(chunk))
        if numbers and not done[province]:
            raise NotReadyError(
                f"none of the {len(numbers):,} customers of {province}'s latest snapshot is in the "
                f"{settings.online_store} online store: run `telcoml materialize` first"
            )
        record_prepared(settings, province, stamp)
        log.info("prepared %d answers for %s (generation %s)", done[province], province, stamp)
    return PreparedResult(done, time.perf_counter() - started)


def provinces_due(
    settings: Settings,
    models: ModelSet,
    provinces: Sequence[str] | None,
    customers: dict[str, list[str]],
    watermark: str,
    code: str,
    skip_current: bool,
) -> Iterator[tuple[str, ModelSet, str]]:
    """(province, the models answering it, its generation) of each province to prepare: the
    named ones (every province with a snapshot by default), skipping those whose recorded
    generation is already the current one when ``skip_current``."""
    for province in [p.upper() for p in provinces] if provinces else list(customers):
        if province not in customers:
            raise NotReadyError(f"no indicator snapshot for province {province} in {settings.offline_dir}")
        own = models.for_province(province)
        stamp = generation(watermark, own, code)
        if skip_current and recorded_generations(settings).get(province) == stamp:
            log.info("answers of %s are current (generation %s): not prepared again", province, stamp)
            continue
        yield province, own, stamp


def prepared_state(settings: Settings) -> Path:
    """Where the generation last prepared in full is recorded per province, for this online store."""
    store = settings.online_store
    if store == "redis":  # one file per Redis: two servers' answers are not each other's
        store += "-" + hashlib.sha256(settings.redis_url.encode()).hexdigest()[:8]
    return settings.workdir / "serving" / "prepare" / f"state-{store}.json"


def recorded_generations(settings: Settings) -> dict[str, str]:
    """province -> the generation last prepared in full (``prepared_state``)."""
    try:
        return json.loads(prepared_state(settings).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def record_prepared(settings: Settings, province: str, stamp: str) -> None:
    """Note that every answer of ``province`` is now of generation ``stamp``."""
    path = prepared_state(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps({**recorded_generations(settings), province: stamp}, sort_keys=True), path)


def push_answers(store: FeatureStore, features, models: ModelSet, stamp: str) -> int:
    """Score ``features`` (an online read's customers), pack each answer and push it to ``crm_answers``."""
    prepared_at = datetime.now(UTC)
    scored = score_frame(models, features)
    msisdns, provinces = features["msisdn"], features["province"]
    answers = [
        _packed(
            {
                **customer_answer(m, p, s, models, a, "prepared"),
                "prepared_at": prepared_at.isoformat(timespec="seconds"),
            }
        )
        for m, p, s, a in zip(msisdns, provinces, scored, features.as_of)
    ]
    rows = pd.DataFrame(
        {
            "msisdn": msisdns.astype(str),
            "province": provinces.astype(str),
            "generation": stamp,
            "answer": answers,
            "indicators": packed_indicators(features),
            "event_timestamp": prepared_at,
        }
    )
    store.push(PUSH_SOURCE, rows, to=PushMode.ONLINE)
    return len(rows)


def packed_indicators(features: Features) -> list[bytes]:
    """Each customer's indicators as kept beside the answer (the embedded and Spark prepares alike):
    ``Features.records``, each value of its indicator's kind and null where missing, whatever the
    other customers of the chunk hold."""
    return [_packed(r) for r in features.records()]


@dataclass(frozen=True)
class Prepared:
    """One customer's prepared answer as stored (packed JSON, unpacked only when needed)."""

    province: str
    generation: str
    answer: bytes
    indicators: bytes

    def answer_json(self) -> bytes:
        return zlib.decompress(self.answer)


def unpack(packed: bytes):
    """The value of a packed answer or indicators field."""
    return json.loads(zlib.decompress(packed))


class PreparedAnswers:
    """The service's side: look prepared answers up, and know which generation is current."""

    def __init__(self, settings: Settings):
        self.store = open_store(settings)
        self._registry = open_store(settings)  # the watcher thread's own store object
        self.refs = [f"{ANSWERS_VIEW}:{f}" for f in FIELDS]
        self.check_seconds = settings.prepared_check_seconds
        self.code = code_digest()
        #: (materialization digest, province -> (set, generation)): replaced whole, never half
        self._state: tuple[str | None, dict[str, tuple[ModelSet, str]]] = (self._read_watermark(), {})
        threading.Thread(target=self._watch, name="prepared-answers-watch", daemon=True).start()

    def _read_watermark(self) -> str | None:
        try:
            return materialization(self._registry)
        except Exception as err:  # an unreadable registry: answer live until it reads again
            log.warning("prepared answers off: cannot read the Feast registry (%s)", type(err).__name__)
            return None

    @property
    def watermark(self) -> str | None:
        return self._state[0]

    def _watch(self) -> None:
        while True:
            time.sleep(self.check_seconds)
            watermark = self._read_watermark()
            if watermark != self.watermark:
                log.info(
                    "online indicators changed (materialization %s -> %s): prepared answers "
                    "from before are no longer served",
                    self.watermark,
                    watermark,
                )
                self._state = (watermark, {})

    def current(self, models: ModelSet, province: str) -> str | None:
        """The generation an answer for this province must carry to be served now."""
        watermark, cache = self._state  # one consistent pair, whatever the watcher does meanwhile
        if watermark is None:
            return None
        entry = cache.get(province)
        if entry is None or entry[0] is not models:  # first call, or a reload swapped the set
            entry = cache[province] = (models, generation(watermark, models, self.code))
        return entry[1]

    def lookup(self, msisdns: list[str]) -> list[Prepared | None]:
        """Stored answers, None where there is none (or ``crm_answers`` is not registered yet);
        ``StoreUnavailable`` if the store does not answer."""
        try:
            columns = self.store.get_online_features(
                features=self.refs, entity_rows=[{"msisdn": m} for m in msisdns]
            ).to_dict()
        except FeatureViewNotFoundException:  # a repository applied before prepared answers existed
            return [None] * len(msisdns)
        except Exception as err:  # redis/sqlite errors, worded as the live lookup words them
            raise StoreUnavailable(
                f"online feature store unavailable ({type(err).__name__}); retry shortly"
            ) from None
        return [
            Prepared(p, g, a, i) if a is not None else None
            for p, g, a, i in zip(*(columns[f] for f in FIELDS))
        ]


__all__ = [
    "prepare_answers",
    "prepared_state",
    "PreparedAnswers",
    "Prepared",
    "PreparedResult",
    "generation",
    "materialization",
    "unpack",
]
