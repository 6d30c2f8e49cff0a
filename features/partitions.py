"""Walking a folder laid out like raw/: which files are partitions of which table, province and month.

The layout is the one ``features.schemas.partition_path`` writes: monthly tables
``<table>/province=XX/month=YYYY-MM/part-0.parquet``, master tables
``<table>/province=XX/part-0.parquet`` (``part-0.csv`` is accepted for both). Hidden files
are temporaries of atomic writes in progress, not data, and are skipped. Files that break
the layout are reported as ``LayoutIssue``s; how bad each one is, the quality gate decides
(``features.quality``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from features.schemas import PROVINCE_CODES, TABLES

PARTITION_FILES = ("part-0.parquet", "part-0.csv")
#: What ``discover`` can find wrong with a file's place (``LayoutIssue.kind``).
OUTSIDE, MISPLACED, UNKNOWN_PROVINCE, DUPLICATE = "outside", "misplaced", "unknown_province", "duplicate"

_PROVINCE_DIR = re.compile(r"^province=([A-Z]{2})$")
_MONTH_DIR = re.compile(r"^month=(\d{4}-(?:0[1-9]|1[0-2]))$")
_MONTH_IN_PATH = re.compile(r"(?:^|/)month=(\d{4}-(?:0[1-9]|1[0-2]))(?:/|$)")
_PROVINCE_IN_PATH = re.compile(r"(?:^|/)province=([A-Z]{2})(?:/|$)")


@dataclass(frozen=True)
class Partition:
    """One partition file found under a root."""

    table: str
    province: str
    month: str | None  # None for master tables
    path: Path
    label: str  # how messages name the file: the root's folder name and the path below it
    #: size and modification time when found: ingest copies only what was checked
    stamp: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class LayoutIssue:
    """A file whose place breaks the layout (UNKNOWN_PROVINCE: a partition, but a suspicious one)."""

    kind: str  # OUTSIDE | MISPLACED | UNKNOWN_PROVINCE | DUPLICATE
    label: str
    table: str  # "" when the file is not under a declared table's folder
    message: str
    province: str | None = None
    month: str | None = None


def label_of(root: Path, path: Path) -> str:
    """``<root's folder name>/<path relative to root>``, as the gate's messages name files."""
    return f"{Path(os.path.abspath(root)).name}/{path.relative_to(root).as_posix()}"


def file_stamp(path: Path) -> tuple[int, int]:
    """Size and modification time: a file whose stamp changed is not the file that was checked."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def partition_of(path: str | Path) -> tuple[str | None, str | None]:
    """(province, month) named by the ``province=XX`` and ``month=YYYY-MM`` folders of a path."""
    posix = Path(path).as_posix()
    province = _PROVINCE_IN_PATH.search(posix)
    month = _MONTH_IN_PATH.search(posix)
    return province.group(1) if province else None, month.group(1) if month else None


def discover(root: Path) -> tuple[list[Partition], list[LayoutIssue]]:
    """The partitions under ``root``, and the files that break the layout, in path order."""
    parts: dict[tuple, Partition] = {}
    issues: list[LayoutIssue] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        label = label_of(root, path)
        table = TABLES.get(rel.parts[0]) if len(rel.parts) > 1 else None
        if table is None:
            issues.append(LayoutIssue(OUTSIDE, label, "", "not under a declared table's folder; ignored"))
            continue
        expected = f"{table.name}/province=XX/{'month=YYYY-MM/' if table.monthly else ''}part-0.parquet"
        depth = 4 if table.monthly else 3
        province = _PROVINCE_DIR.match(rel.parts[1]) if len(rel.parts) == depth else None
        month = _MONTH_DIR.match(rel.parts[2]) if province and table.monthly else None
        if province is None or (table.monthly and month is None) or rel.name not in PARTITION_FILES:
            issues.append(
                LayoutIssue(
                    MISPLACED, label, table.name, f"not a partition: expected {expected} (or part-0.csv)"
                )
            )
            continue
        part = Partition(
            table.name, province.group(1), month.group(1) if month else None, path, label, file_stamp(path)
        )
        if part.province not in PROVINCE_CODES:
            issues.append(
                LayoutIssue(
                    UNKNOWN_PROVINCE,
                    label,
                    part.table,
                    f"province {part.province} is not one of the known codes {list(PROVINCE_CODES)}",
                    part.province,
                    part.month,
                )
            )
        key = (part.table, part.province, part.month)
        if key in parts:
            issues.append(
                LayoutIssue(
                    DUPLICATE,
                    label,
                    part.table,
                    f"two files for one partition: {parts[key].label} and {label}",
                    part.province,
                    part.month,
                )
            )
            continue
        parts[key] = part
    return list(parts.values()), issues


__all__ = [
    "PARTITION_FILES",
    "OUTSIDE",
    "MISPLACED",
    "UNKNOWN_PROVINCE",
    "DUPLICATE",
    "Partition",
    "LayoutIssue",
    "label_of",
    "file_stamp",
    "partition_of",
    "discover",
]
