"""Scored customers handed to monitoring from the service, off the request path."""

from __future__ import annotations

import atexit
import threading
import time

import pandas as pd

from core.logs import get_logger
from monitoring.record import ScoreLog, predictions_from_answers
from serving.online import Features
from serving.prepared import unpack

log = get_logger("telcoml.serving")


class DeferredScoreLog:
    """Hands scored customers to monitoring's ``ScoreLog`` in bulk, off the request path.

    ``ScoreLog.record`` builds a frame of every indicator per call, 5-13 ms whatever the
    rows (measured in the server): per request that was most of ``/score``'s time. Here a
    request only appends to a list; a thread records everything scored since every few
    seconds (the cost barely grows with the rows, and a request that meets a flush waits
    for the GIL), and what is left at exit.
    """

    def __init__(self, score_log: ScoreLog, every_seconds: float = 5.0):
        self.score_log = score_log
        self.every_seconds = every_seconds
        self._pending: list[tuple[Features, list[dict], dict[str, str]]] = []
        #: prepared answers served: (packed indicators, packed answer, models), unpacked at flush
        self._prepared: list[tuple[bytes, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="deferred-score-log", daemon=True).start()
        atexit.register(self.flush)  # runs before ScoreLog's own exit flush (registered earlier)

    def record(self, features: Features, answers: list[dict], models: dict[str, str]) -> None:
        with self._lock:
            self._pending.append((features, answers, models))

    def record_prepared(self, indicators: bytes, answer: bytes, models: dict[str, str]) -> None:
        with self._lock:
            self._prepared.append((indicators, answer, models))

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            prepared, self._prepared = self._prepared, []
        by_versions: dict[tuple, tuple[list, list]] = {}
        for entry in pending:  # a reload or another province's set: each part with its own models
            by_versions.setdefault(tuple(entry[2].items()), ([], []))[0].append(entry)
        for entry in prepared:
            by_versions.setdefault(tuple(entry[2].items()), ([], []))[1].append(entry)
        for versions, (live, ready) in by_versions.items():
            try:
                frames = [f.frame() for f, _, _ in live]
                if ready:
                    frames.append(pd.DataFrame.from_records([unpack(i) for i, _, _ in ready]))
                answers = [a for _, part, _ in live for a in part] + [unpack(a) for _, a, _ in ready]
                self.score_log.record(
                    pd.concat(frames, ignore_index=True), predictions_from_answers(answers), dict(versions)
                )
            except Exception as err:  # monitoring must never take serving down
                log.warning(
                    "could not record %d scored customers for monitoring: %s", len(live) + len(ready), err
                )

    def _run(self) -> None:
        while True:
            time.sleep(self.every_seconds)
            self.flush()
