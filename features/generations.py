"""A province's files replaced as one journaled generation: all of a run, or none of it.

A bring-your-own-data run (``features.byod``) replaces a province's offline files and labels,
which are the province's own data and may exist nowhere else. So the replacement is its own
concern, kept apart from the mapping and the gate:

* the new files are written completely under temporary names, the files they replace or
  remove are kept (hard links) in ``offline/.previous/<PROVINCE>/<stamp>/`` (mirroring the
  work directory), and only then are they swapped in, each by an atomic rename
  (``swap_generation``);
* a journal (``.previous/<PROVINCE>/<stamp>/generation.json``) records the plan; an error
  undoes the run at once, and a run interrupted harder (the process killed) is undone by the
  next run of that province (``recover_interrupted``);
* the last ``KEPT_GENERATIONS`` previous generations are kept (``prune_generations``), and
  one run at a time changes a province's files (``province_lock``).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core import indicators as lib
from core.errors import TelcomlError
from core.io import atomic_write_text, file_lock
from core.settings import Settings
from features.provinces import custom_subject

#: Previous generations of a province's files kept in ``offline/.previous/<PROVINCE>/``.
KEPT_GENERATIONS = 3
PREVIOUS_DIR = ".previous"
_JOURNAL = "generation.json"

#: How to write one new file of a run, to the path it is given (its staged name).
Writer = Callable[[Path], None]


class GenerationError(TelcomlError):
    """Writing a province's files failed or could not start; its earlier files are unchanged."""


def previous_dir(settings: Settings, province: str) -> Path:
    """Where a province's previous generations are kept: ``offline/.previous/<PROVINCE>/``."""
    return settings.offline_dir / PREVIOUS_DIR / province


def _province_subjects(province: str) -> list[str]:
    return [*lib.SUBJECTS, custom_subject(province)]


def province_files(settings: Settings, province: str) -> list[Path]:
    """The province's offline files, every view."""
    return sorted(
        path
        for subject in _province_subjects(province)
        for path in (settings.offline_dir / subject).glob(f"{province}_*.parquet")
    )


def province_months(settings: Settings, province: str) -> list[str]:
    """The months of which the province has offline files."""
    return sorted({path.stem.split("_", 1)[1] for path in province_files(settings, province)})


@dataclass(frozen=True)
class FileChange:
    """One file of a run: written anew (``staged`` is its complete new version under a
    temporary name) or removed (``staged`` None); ``kept`` when an earlier version exists and
    is kept in the previous generation. Paths are relative to the work directory."""

    final: str
    staged: str | None
    kept: bool


def _staged_name(final: Path, stamp: str) -> Path:
    # not *.parquet: neither Feast's globs nor the labels' see a staged file
    return final.with_name(f".{final.name}.{stamp}.staged")


def plan_generation(
    settings: Settings,
    province: str,
    outputs: dict[Path, Writer],
    months: list[str],
    replace: bool,
    labels_path: Path,
    stamp: str,
) -> list[FileChange]:
    """What the run changes (pure apart from looking at which files exist): every output written;
    the province's other files of the source's months removed, and with ``replace`` all of its
    other files and its labels file."""
    workdir = settings.workdir

    def rel(path: Path) -> str:
        return str(path.relative_to(workdir))

    changes = [FileChange(rel(p), rel(_staged_name(p, stamp)), p.exists()) for p in outputs]
    existing = [*province_files(settings, province), *([labels_path] if labels_path.exists() else [])]
    for path in existing:
        if path in outputs:
            continue
        month = path.stem.split("_", 1)[1] if path != labels_path else None
        if replace or path == labels_path or month in months:  # labels: none left after the merge
            changes.append(FileChange(rel(path), None, True))
    return changes


def generation_stamp() -> str:
    """A sortable name for a run's generation (UTC, microseconds)."""
    return pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%fZ")


def swap_generation(
    settings: Settings,
    province: str,
    changes: list[FileChange],
    outputs: dict[Path, Writer],
    replace: bool,
    before: list[str],
    months: list[str],
    stamp: str,
) -> Path | None:
    """Write every new file completely, keep the ones it replaces, then swap them in.

    1. the journal (the plan) is written first; 2. each new file is written to its staged name
    and synced; 3. each file to be replaced or removed is hard-linked into the previous
    generation's folder; 4. each staged file is renamed over its final name, each removed file
    unlinked (``_install``); 5. the journal says "done". An exception at any step undoes the
    run (``_roll_back``); a killed process leaves the journal, which the next run undoes.
    Returns the previous generation's folder, or None when the run replaced nothing.
    """
    workdir = settings.workdir
    folder = previous_dir(settings, province) / stamp
    journal = {
        "province": province,
        "stamp": stamp,
        "replace": replace,
        "state": "writing",
        "months_before": before,
        "months_source": months,
        "changes": [c.__dict__ for c in changes],
    }
    try:
        folder.mkdir(parents=True)
        _write_journal(folder, journal)
        for change in changes:
            if change.staged is not None:
                staged = workdir / change.staged
                outputs[workdir / change.final](staged)
                _fsync(staged)
        for change in changes:
            if change.kept:
                _keep(workdir / change.final, folder / change.final)
        for change in changes:
            _install(workdir, change)
        for directory in {(workdir / c.final).parent for c in changes}:
            _fsync(directory)
        journal["state"] = "done"
        journal["finished"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
        _write_journal(folder, journal)
    except BaseException as err:  # an interrupt too: undo, then let it go on
        what = str(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
        try:
            _roll_back(settings, folder, journal)
        except Exception as undo:  # the disk refuses even the undo: the next run retries it
            raise GenerationError(
                f"writing {province}'s files failed ({what}) and undoing the run failed too ({undo}); "
                f"the earlier files are kept in {folder}, and the next `telcoml byod` of {province} "
                "puts them back"
            ) from None
        if isinstance(err, Exception):
            raise GenerationError(
                f"writing {province}'s files failed ({what}); the run was undone and its earlier "
                "files are unchanged"
            ) from None
        raise
    if not any(c.kept for c in changes):  # nothing replaced: no previous generation to keep
        _remove_generation(folder)
        return None
    return folder


def _install(workdir: Path, change: FileChange) -> None:
    """Put one file of the new generation in place: an atomic rename (or the removal)."""
    final = workdir / change.final
    if change.staged is None:
        final.unlink(missing_ok=True)
    else:
        os.replace(workdir / change.staged, final)


def _keep(final: Path, copy: Path) -> None:
    """Keep the current version of ``final`` at ``copy``: a hard link, or a complete copy."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.unlink(missing_ok=True)
    try:
        os.link(final, copy)
    except OSError:  # a file system without hard links
        partial = copy.with_name(f".{copy.name}.partial")
        shutil.copy2(final, partial)
        os.replace(partial, copy)  # the copy exists only when complete


def _roll_back(settings: Settings, folder: Path, journal: dict) -> None:
    """Undo a run that did not finish: every earlier version back in place, every file it
    added removed, its staged files and folder deleted. Safe to repeat (a crash while undoing)."""
    workdir = settings.workdir
    stamp = journal["stamp"]
    for change in map(lambda c: FileChange(**c), journal["changes"]):
        final = workdir / change.final
        copy = folder / change.final
        if change.kept:
            if copy.exists():
                os.replace(copy, final)
        elif change.staged is not None:
            final.unlink(missing_ok=True)  # a file this run added
        if change.staged is not None:
            for leftover in final.parent.glob(glob.escape(f".{final.name}.{stamp}.staged") + "*"):
                leftover.unlink(missing_ok=True)
    _remove_generation(folder)


def _remove_generation(folder: Path) -> None:
    """Delete a generation's folder, its journal last."""
    if not folder.exists():
        return
    for child in folder.iterdir():
        if child.name == _JOURNAL:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    (folder / _JOURNAL).unlink(missing_ok=True)
    folder.rmdir()


def _write_journal(folder: Path, journal: dict) -> None:
    atomic_write_text(json.dumps(journal, indent=1), folder / _JOURNAL, mode=0o644)
    _fsync(folder / _JOURNAL)


def _read_journal(folder: Path) -> dict | None:
    try:
        return json.loads((folder / _JOURNAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def recover_interrupted(settings: Settings, province: str) -> list[str]:
    """Undo the province's runs that were interrupted (journal not "done"); what was undone."""
    done = []
    root = previous_dir(settings, province)
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.exists() else []:
        journal = _read_journal(folder)
        if journal is not None and journal.get("state") != "done":
            _roll_back(settings, folder, journal)
            done.append(
                f"an interrupted byod run of {province} ({journal['stamp']}) was undone: its earlier "
                f"files are back in place"
            )
    return done


def prune_generations(settings: Settings, province: str, keep: int = KEPT_GENERATIONS) -> None:
    """Keep the ``keep`` latest previous generations; remove older ones and leftovers."""
    root = previous_dir(settings, province)
    finished = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        journal = _read_journal(folder)
        if journal is None:  # a folder whose journal was never written or already removed
            shutil.rmtree(folder, ignore_errors=True)
        elif journal.get("state") == "done":
            finished.append(folder)
    for folder in finished[:-keep] if keep else finished:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def province_lock(settings: Settings, province: str) -> Iterator[None]:
    """One run at a time changes a province's files."""
    lock = previous_dir(settings, province) / ".lock"
    with file_lock(lock, wait=False) as held:
        if not held:
            raise GenerationError(
                f"another `telcoml byod` run of {province} is writing its files ({lock}); "
                "run again when it has finished"
            )
        yield


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "FileChange",
    "GenerationError",
    "KEPT_GENERATIONS",
    "PREVIOUS_DIR",
    "Writer",
    "generation_stamp",
    "plan_generation",
    "previous_dir",
    "province_files",
    "province_lock",
    "province_months",
    "prune_generations",
    "recover_interrupted",
    "swap_generation",
]
