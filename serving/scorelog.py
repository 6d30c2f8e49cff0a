"""Scored customers handed to monitoring from the service: on disk before the answer
leaves, turned into Parquet off the request path."""

from __future__ import annotations

import atexit
import threading
import time

from core.logs import get_logger
from monitoring.journal import (
    ScoreJournal,
    convert_segment,
    journal_rows,
    live_entry,
    prepared_entry,
    read_entries,
    recover_journal,
)
from monitoring.record import MAX_HELD_ROWS, ScoreLog
from serving.online import Features

log = get_logger("telcoml.serving")

#: Seconds between two looks at the journal: seal the open segment when due, convert the
#: sealed ones, report what could not be kept.
LOOK_SECONDS = 5.0

_DROPPED = None


def dropped_counter():
    """``telcoml_monitoring_records_dropped_total`` on ``/metrics``: answered customers that
    monitoring will never see, because nothing could be written (disk full) and memory
    already held ``MAX_HELD_ROWS`` of them. Created with the service's hand-off, once
    BentoML's worker has set up Prometheus's multiprocess directory (as ``answered_counter``
    is), so it shows 0 until something is dropped."""
    global _DROPPED
    if _DROPPED is None:
        from prometheus_client import Counter

        _DROPPED = Counter(
            "telcoml_monitoring_records_dropped",
            "Answered customers dropped from monitoring: nothing could be written and memory was full",
        )
    return _DROPPED


class DeferredScoreLog:
    """Hands scored customers to monitoring: journaled on the request path, converted off it.

    A request appends one entry to this process's journal (``monitoring.journal.ScoreJournal``):
    one JSON encoding and one ``os.write``, measured at ~50 µs for a customer scored live
    (the JSON of ~40 indicators; an 18 ms answer) and ~9 µs for a prepared answer, whose
    packed bytes are written as they are (a 2 ms answer); 2.5 ms for a batch of 200. That
    is what makes an answered customer survive a SIGKILL of the server: the entry is in the
    kernel's page cache before the answer leaves. Building the recorded rows (5-13 ms a
    frame, whatever the rows) stays off the request path: every ``LOOK_SECONDS`` a thread
    seals the open segment once it holds ``flush_rows`` customers or is ``flush_seconds``
    old (the ``ScoreLog``'s), writes it as Parquet in one pass and deletes it. At start the
    thread first recovers the segments of servers that died (``recover_journal``); at exit
    everything is converted.

    If the journal cannot be written (disk full), entries are held in memory and handed to
    the ``ScoreLog``'s buffer at the next look — together at most ``MAX_HELD_ROWS``
    customers; beyond that the newest are dropped (holding what came first costs nothing
    more, and a dropped request allocates nothing), counted in
    ``telcoml_monitoring_records_dropped_total`` and reported in one warning per look.
    """

    def __init__(self, score_log: ScoreLog, every_seconds: float = LOOK_SECONDS):
        self.score_log = score_log
        self.settings = score_log.settings
        self.every_seconds = (
            min(every_seconds, score_log.flush_seconds) if score_log.flush_seconds > 0 else every_seconds
        )
        self.journal = ScoreJournal(score_log.settings, score_log.source)
        #: entries the journal refused, with their customers, oldest first
        self._held: list[tuple[bytes, int]] = []
        self._held_rows = 0
        #: since the last report: requests the journal refused (and why), customers dropped
        self._refused = 0
        self._refusal = ""
        self._dropped = 0
        #: the ScoreLog's drops already counted
        self._counted = 0
        #: after a failed conversion, the next one waits until then (the segments stay on disk)
        self._retry_at = 0.0
        self._lock = threading.Lock()  # the journal and the held entries
        #: set once the segments of servers that died before have been recovered
        self.recovered = threading.Event()
        self._converting = threading.Lock()  # one look (or flush) at a time
        if score_log.enabled:
            try:  # on /metrics from the start, at 0
                dropped_counter()
            except Exception as err:
                log.warning("no counter of dropped monitoring records: %s", err)
            threading.Thread(target=self._run, name="deferred-score-log", daemon=True).start()
            atexit.register(self.close)  # runs before ScoreLog's own exit flush (registered earlier)

    def record(self, features: Features, answers: list[dict], models: dict[str, str]) -> None:
        if not (self.score_log.enabled and len(features)):
            return
        try:
            entry = live_entry(features.columns, features.as_of, answers, models)
        except Exception as err:  # a value JSON cannot take: the answer still goes out
            self._lose(len(features), f"not recordable: {err}")
            return
        self._keep(entry, len(features))

    def record_prepared(self, indicators: bytes, answer: bytes, models: dict[str, str]) -> None:
        if not self.score_log.enabled:
            return
        try:
            entry = prepared_entry(indicators, answer, models)
        except Exception as err:
            self._lose(1, f"not recordable: {err}")
            return
        self._keep(entry, 1)

    @property
    def held_rows(self) -> int:
        """Customers waiting in memory (the journal refused them), here and in the ScoreLog."""
        return self._held_rows + self.score_log.held_rows

    def _keep(self, entry: bytes, customers: int) -> None:
        """Into the journal before the answer leaves; if it refuses, into memory while there is room."""
        with self._lock:
            try:
                self.journal.append(entry, customers)
                return
            except Exception as err:  # a full disk, mostly (OSError); never the request's problem
                self._refused += 1
                self._refusal = str(err)
            if self._held_rows + self.score_log.held_rows + customers > MAX_HELD_ROWS:
                self._dropped += customers
                return
            self._held.append((entry, customers))
            self._held_rows += customers

    def _lose(self, customers: int, reason: str) -> None:
        with self._lock:
            self._refused += 1
            self._refusal = reason
            self._dropped += customers

    def flush(self) -> None:
        """Everything answered so far into Parquet now (at exit; tests)."""
        with self._converting:
            self._hand_over_held()
            with self._lock:
                self.journal.seal()
            self._convert()
            self.score_log.flush()
            self._report()

    def close(self) -> None:
        """At exit: everything into Parquet, and the journal's lock file removed if nothing is left."""
        self.flush()
        with self._lock:
            self.journal.close()

    def _look(self) -> None:
        with self._converting:
            self._hand_over_held()
            with self._lock:
                if self.journal.due(self.score_log.flush_rows, self.score_log.flush_seconds):
                    self.journal.seal()
            if time.monotonic() >= self._retry_at:
                self._convert()
            self._report()

    def _convert(self) -> None:
        """Sealed segments into Parquet, each deleted once written; a failure keeps it on disk."""
        with self._lock:
            sealed = list(self.journal.sealed)
        failed: list[str] = []
        for path in sealed:
            try:
                convert_segment(self.settings, path)
            except Exception as err:  # monitoring must never take serving down
                failed.append(f"{path.name}: {err}")
                continue
            with self._lock:
                self.journal.release(path)
        if failed:
            wait = max(self.score_log.flush_seconds, self.every_seconds)
            self._retry_at = time.monotonic() + wait
            log.warning(
                "could not write %d monitoring journal segment(s) as Parquet (%s): kept on disk, "
                "next attempt in %.0f s",
                len(failed),
                failed[-1],
                wait,
            )
        else:
            self._retry_at = 0.0

    def _hand_over_held(self) -> None:
        """Entries the journal refused: into it now if it takes them again (space freed),
        else as rows into the ScoreLog's buffer (bounded there)."""
        with self._lock:
            held, self._held, self._held_rows = self._held, [], 0
        taken = 0
        for entry, customers in held:  # the lock entry by entry: requests go on meanwhile
            with self._lock:
                try:
                    self.journal.append(entry, customers)
                except Exception:
                    break
            taken += 1
        held = held[taken:]
        if not held:
            return
        try:
            entries, _ = read_entries(b"".join(entry for entry, _ in held))
            self.score_log.add(journal_rows(self.settings, entries, self.score_log.source))
        except Exception as err:  # monitoring must never take serving down
            self._lose(sum(n for _, n in held), f"not converted: {err}")

    def _report(self) -> None:
        """One warning per look for what the journal refused and what was dropped, and the counter."""
        with self._lock:
            refused, self._refused = self._refused, 0
            dropped, self._dropped = self._dropped, 0
            reason = self._refusal
        dropped_by_log, self._counted = self.score_log.dropped - self._counted, self.score_log.dropped
        if refused or dropped:
            log.warning(
                "monitoring journal refused %d answered requests (%s): %d customers held in memory "
                "(at most %d), %d newer ones dropped since the last look",
                refused,
                reason,
                self.held_rows,
                MAX_HELD_ROWS,
                dropped,
            )
        if dropped + dropped_by_log:
            try:
                dropped_counter().inc(dropped + dropped_by_log)
            except Exception as err:  # a metrics problem must not stop the hand-off
                log.warning("could not count dropped monitoring records: %s", err)

    def _run(self) -> None:
        try:
            recover_journal(self.settings)
        except Exception as err:  # monitoring must never take serving down
            log.warning("could not recover the monitoring journal: %s", err)
        self.recovered.set()
        while True:
            time.sleep(self.every_seconds)
            try:
                self._look()
            except Exception as err:  # the thread must outlive any one look
                log.warning("monitoring hand-off failed: %s", err)
