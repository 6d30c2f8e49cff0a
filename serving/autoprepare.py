"""Preparing starts by itself: after a materialization, a new champion or a reload.

``start_background_prepare`` records a request and starts ``python -m serving.autoprepare``
detached, its output appended to ``<workdir>/serving/prepare/prepare.log``; the caller
(``telcoml materialize``, ``telcoml train``, ``POST /reload``) returns at once. Until the
answers are prepared, calls are scored live: the prepared answers' generation
(``serving.prepared``) already keeps older answers from being served.

One prepare at a time per work directory (an ``flock`` on ``prepare.lock``; ``telcoml
prepare`` waits for it, a background one does not). No request is lost: the process
holding the lock looks at the request stamp again after releasing it, and prepares once
more if a request came while it ran; a background process that finds the lock held
leaves its request to the holder. A background prepare skips the provinces whose
answers are current (``prepare_answers(skip_current=True)``), so a reload after a
training run that already prepared costs a registry read. ``TELCOML_AUTO_PREPARE=0``
turns it off (tests, CI).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core.io import atomic_write_text, file_lock
from core.settings import Settings

if TYPE_CHECKING:
    from serving.champions import ModelSet
    from serving.prepared import PreparedResult

#: The settings of the process that asked, for the background process (as JSON).
SETTINGS_ENV = "TELCOML_PREPARE_SETTINGS"


def prepare_dir(settings: Settings) -> Path:
    return settings.workdir / "serving" / "prepare"


@contextlib.contextmanager
def prepare_lock(settings: Settings, wait: bool = True) -> Iterator[bool]:
    """Hold the work directory's prepare lock; yields False at once if ``wait`` is off and it is held."""
    with file_lock(prepare_dir(settings) / "prepare.lock", wait) as held:
        yield held


def _requested(settings: Settings) -> str | None:
    try:
        return (prepare_dir(settings) / "requested").read_text()
    except FileNotFoundError:
        return None


def start_background_prepare(settings: Settings, why: str) -> Path | None:
    """Ask for a prepare and start one in the background; the log's path, or None when
    ``auto_prepare`` is off."""
    if not settings.auto_prepare:
        return None
    folder = prepare_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(uuid.uuid4().hex, folder / "requested")
    log_path = folder / "prepare.log"
    with open(log_path, "ab") as log:
        log.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} prepare requested: {why}\n".encode())
        log.flush()
        child = subprocess.Popen(
            [sys.executable, "-m", "serving.autoprepare"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the command that asked, and its Ctrl-C
            env=_child_environment(settings),
        )
    threading.Thread(target=child.wait, name="prepare-reaper", daemon=True).start()  # no zombie in a server
    return log_path


def _child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with its settings, without the metrics folder Feast made for it
    (a temporary folder removed when this process exits; the child makes its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_MULTIPROC")}
    return {**env, SETTINGS_ENV: settings.model_dump_json()}


def run_requested(settings: Settings, prepare: Callable[[], None]) -> int:
    """Run ``prepare`` under the lock until no request is left; the number of runs (0: another
    process holds the lock and will see the request)."""
    runs = 0
    while True:
        wanted = _requested(settings)
        with prepare_lock(settings, wait=False) as held:
            if not held:
                return runs
            prepare()
            runs += 1
        if _requested(settings) == wanted:
            return runs


def main() -> int:
    from core.errors import TelcomlError
    from serving.champions import load_champions, with_threads

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    os.nice(10)  # calls first: the service shares the cores

    def prepare() -> None:
        result = prepare_on_engine(settings, with_threads(load_champions(settings), 0), skip_current=True)
        print(
            f"{datetime.now(UTC).isoformat(timespec='seconds')} {result.answers:,} answers prepared "
            f"({', '.join(f'{p} {n:,}' for p, n in result.provinces.items()) or 'all current'}) "
            f"in {result.seconds:.0f}s",
            flush=True,
        )

    try:
        run_requested(settings, prepare)
    except TelcomlError as err:  # no champion yet, nothing materialized: said in the log
        print(f"{datetime.now(UTC).isoformat(timespec='seconds')} not prepared: {err}", flush=True)
        return 1
    return 0


def prepare_on_engine(
    settings: Settings,
    models: ModelSet,
    provinces: Sequence[str] | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    skip_current: bool = False,
) -> PreparedResult:
    """``serving.prepared.prepare_answers`` on the settings' engine: in this process, or as a
    Spark job whose executors score and write the answers (``TELCOML_ENGINE=spark``,
    ``serving.spark_prepare``). Here, above both, so neither imports the other back."""
    from serving.prepared import prepare_answers

    if settings.engine == "spark":
        from core.spark import spark_session
        from serving.spark_prepare import prepare_answers_spark

        return prepare_answers_spark(
            spark_session(settings), settings, models, provinces, progress=progress, skip_current=skip_current
        )
    return prepare_answers(settings, models, provinces, progress=progress, skip_current=skip_current)


if __name__ == "__main__":
    sys.exit(main())
