"""What every benchmark records about the machine and the code it measured."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def environment(packages: tuple[str, ...]) -> dict:
    """Python, platform, CPUs, memory, git commit and modified files, and package versions."""
    import psutil

    try:
        commit = (
            subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or None
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, []
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "git_commit": commit,
        "git_modified": dirty,
        **{p: _version(p) for p in packages},
    }


def generated_world(settings, customers: int, months: int, provinces: tuple[str, ...], seed: int = 7) -> None:
    """A synthetic world in ``settings.workdir`` (raw tables and truth), unless one is there already."""
    from features.generate import GeneratorConfig, generate

    if not settings.raw_dir.exists():
        generate(
            GeneratorConfig(customers=customers, months=months, provinces=provinces, seed=seed),
            settings.raw_dir,
            settings.truth_dir,
        )
